// The few globals every supported host (Node 20, browsers, workers) has, declared
// here because src/ is compiled without Node or DOM types.
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input?: Uint8Array): string;
}
declare const performance: { now(): number; readonly timeOrigin: number };
declare const crypto: {
  getRandomValues<T extends Uint8Array>(array: T): T;
  readonly subtle: { digest(algorithm: string, data: Uint8Array): Promise<ArrayBuffer> };
};
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
    static imports(m: Module): Array<{ module: string; name: string; kind: string }>;
    static exports(m: Module): Array<{ name: string; kind: string }>;
  }
  class Instance {
    constructor(m: Module, imports?: Record<string, Record<string, unknown>>);
    readonly exports: Record<string, unknown>;
  }
  class Memory {
    readonly buffer: ArrayBuffer;
  }
  class RuntimeError extends Error {}
  class CompileError extends Error {}
  class LinkError extends Error {}
  function compile(bytes: Uint8Array): Promise<Module>;
}
declare function setTimeout(cb: () => void, ms?: number): unknown;
declare function clearTimeout(handle: unknown): void;
interface LayerboxFetchResponse {
  readonly ok: boolean;
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  arrayBuffer(): Promise<ArrayBuffer>;
  text(): Promise<string>;
}
declare function fetch(url: string, init?: { method?: string; headers?: Record<string, string>; body?: Uint8Array }): Promise<LayerboxFetchResponse>;
// Streaming registry access (src/oci/registry.ts).
declare class URL {
  constructor(url: string, base?: string);
  readonly href: string;
  readonly host: string;
  readonly protocol: string;
}
interface AbortSignal {
  readonly aborted: boolean;
}
declare class AbortController {
  readonly signal: AbortSignal;
  abort(reason?: unknown): void;
}
interface LayerboxReadableStream<R> {
  getReader(): { read(): Promise<{ done: boolean; value?: R }>; cancel(reason?: unknown): Promise<void> };
}
declare var ReadableStream: {
  new <R>(source: { pull?(c: { enqueue(chunk: R): void; close(): void }): void | Promise<void>; cancel?(): void | Promise<void> }): LayerboxReadableStream<R>;
};

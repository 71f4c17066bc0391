// The few globals every supported host (Node 20, browsers, workers) has, declared
// here because src/ is compiled without Node or DOM types.
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input?: Uint8Array): string;
}

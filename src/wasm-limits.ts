import { LayerboxError } from './errno.js';

/** The size of a WebAssembly page. */
export const WASM_PAGE = 65536;

function readLeb(b: Uint8Array, pos: number, what: string): [value: number, next: number] {
  let value = 0, shift = 0;
  for (let i = 0; i < 10; i++) {
    if (pos >= b.length) throw new LayerboxError(`${what}: truncated module`, { code: 'CORRUPT' });
    const byte = b[pos++]!;
    value += (byte & 0x7f) * 2 ** shift;
    if (!(byte & 0x80)) return [value, pos];
    shift += 7;
  }
  throw new LayerboxError(`${what}: bad LEB128 number`, { code: 'CORRUPT' });
}

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

/**
 * A module whose memory cannot grow past `maxBytes`: the maximum of the
 * memory it defines is lowered to that many bytes (rounded down to whole
 * 64 KiB pages). A guest that asks for more sees `memory.grow` fail (malloc
 * returns NULL), so it stops on its own terms and the host is not harmed.
 * Refused with a clear error: a module whose initial memory is already larger,
 * one that imports its memory, a 64-bit memory.
 */
export function capMemory(wasm: Uint8Array, maxBytes: number): Uint8Array {
  const what = 'memory limit';
  if (!(maxBytes >= WASM_PAGE)) throw new LayerboxError(`${what}: at least 64 KiB (one WebAssembly page), got ${maxBytes} bytes`, { code: 'INVALID' });
  const cap = Math.min(Math.floor(maxBytes / WASM_PAGE), 65536);
  if (wasm.length < 8 || wasm[0] !== 0 || wasm[1] !== 0x61 || wasm[2] !== 0x73 || wasm[3] !== 0x6d) throw new LayerboxError(`${what}: not a WebAssembly module`, { code: 'CORRUPT' });
  let pos = 8;
  let sawMemory = false;
  const parts: Uint8Array[] = [wasm.subarray(0, 8)];
  while (pos < wasm.length) {
    const start = pos;
    const id = wasm[pos++]!;
    const [size, body] = readLeb(wasm, pos, what);
    const end = body + size;
    if (end > wasm.length) throw new LayerboxError(`${what}: truncated module`, { code: 'CORRUPT' });
    if (id === 2 && importsMemory(wasm.subarray(body, end), what)) throw new LayerboxError(`${what}: the module imports its memory; only a memory it defines can be limited`, { code: 'UNSUPPORTED' });
    if (id !== 5) {
      parts.push(wasm.subarray(start, end));
      pos = end;
      continue;
    }
    sawMemory = true;
    let p = body;
    const [count, afterCount] = readLeb(wasm, p, what);
    p = afterCount;
    const out: number[] = leb(count);
    for (let i = 0; i < count; i++) {
      const flags = wasm[p++]!;
      if (flags & 0x04) throw new LayerboxError(`${what}: 64-bit memories are not supported`, { code: 'UNSUPPORTED' });
      const [min, afterMin] = readLeb(wasm, p, what);
      p = afterMin;
      let max = 65536;
      if (flags & 0x01) [max, p] = readLeb(wasm, p, what);
      if (min > cap) throw new LayerboxError(`${what}: the module needs ${min * 64} KiB of memory at start, more than the limit of ${cap * 64} KiB`, { code: 'QUOTA' });
      out.push(flags | 0x01, ...leb(min), ...leb(Math.min(max, cap)));
    }
    if (p !== end) throw new LayerboxError(`${what}: bad memory section`, { code: 'CORRUPT' });
    parts.push(new Uint8Array([5, ...leb(out.length), ...out]));
    pos = end;
  }
  if (!sawMemory) return wasm;
  const total = parts.reduce((n, x) => n + x.length, 0);
  const result = new Uint8Array(total);
  let at = 0;
  for (const x of parts) {
    result.set(x, at);
    at += x.length;
  }
  return result;
}

/** Whether an import section imports a memory. */
function importsMemory(sec: Uint8Array, what: string): boolean {
  let [count, p] = readLeb(sec, 0, what);
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < 2; k++) {
      const [len, q] = readLeb(sec, p, what);
      p = q + len;
    }
    const kind = sec[p++];
    if (kind === 0x02) return true;
    if (kind === 0x00) [, p] = readLeb(sec, p, what);
    else if (kind === 0x01) {
      p++;
      const flags = sec[p++]!;
      [, p] = readLeb(sec, p, what);
      if (flags & 1) [, p] = readLeb(sec, p, what);
    } else if (kind === 0x03) p += 2;
    else if (kind === 0x04) {
      p++;
      [, p] = readLeb(sec, p, what);
    } else throw new LayerboxError(`${what}: unknown import kind ${kind}`, { code: 'CORRUPT' });
  }
  return false;
}

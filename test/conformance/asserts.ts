/**
 * The tiny assertion object the backend conformance suite uses, so the suite
 * runs unchanged under vitest (Node) and in a real browser page. No vitest and
 * no Node API here: this file is bundled for the browser.
 */

export interface Asserts {
  /** Deep equality: primitives by `Object.is`, arrays and plain objects by their own enumerable keys, byte views (Uint8Array, Buffer) by content. */
  eq(actual: unknown, expected: unknown, what: string): void;
  ok(cond: unknown, what: string): void;
  /** `fn` must throw an error whose message contains `substring`; returns the error. */
  throws(fn: () => unknown, substring: string): unknown;
  /** `promise` must reject with an error whose message contains `substring`; returns the error. */
  rejects(promise: Promise<unknown>, substring: string): Promise<unknown>;
}

export class AssertionError extends Error {
  override name = 'AssertionError';
}

function bytesOf(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Structural equality, strict about keys (a key set to undefined is not a missing key) and about prototypes except for byte views. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(b)) {
    if (!ArrayBuffer.isView(a) || !ArrayBuffer.isView(b)) return false;
    const x = bytesOf(a), y = bytesOf(b);
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (a instanceof Date) return a.getTime() === (b as Date).getTime();
  const ka = Object.keys(a), kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

/** A short readable rendering of a value for failure messages. */
export function show(v: unknown, max = 600): string {
  const seen = new WeakSet<object>();
  let text: string;
  try {
    text = JSON.stringify(v, (_k, x: unknown) => {
      if (x === undefined) return '<undefined>';
      if (typeof x === 'bigint') return `${x}n`;
      if (typeof x === 'number' && !Number.isFinite(x)) return String(x);
      if (typeof x === 'object' && x !== null) {
        if (ArrayBuffer.isView(x)) {
          const bytes = bytesOf(x);
          return `<${x.constructor.name}(${bytes.length}) ${Array.from(bytes.subarray(0, 24), (n) => n.toString(16).padStart(2, '0')).join(' ')}${bytes.length > 24 ? ' …' : ''}>`;
        }
        if (x instanceof Error) return `<${x.name}: ${x.message}>`;
        if (seen.has(x)) return '<cycle>';
        seen.add(x);
      }
      return x;
    }) ?? String(v);
  } catch {
    text = String(v);
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function messageOf(e: unknown): string {
  const m = (e as { message?: unknown } | null)?.message;
  return typeof m === 'string' ? m : String(e);
}

function checkError(e: unknown, substring: string, how: string): unknown {
  const m = messageOf(e);
  if (!m.includes(substring)) throw new AssertionError(`${how} with ${show(m)}, which does not contain ${show(substring)}`);
  return e;
}

export function makeAsserts(): Asserts {
  return {
    eq(actual, expected, what) {
      if (!deepEqual(actual, expected)) throw new AssertionError(`${what}: expected ${show(expected)}, got ${show(actual)}`);
    },
    ok(cond, what) {
      if (!cond) throw new AssertionError(`${what}: expected a truthy value, got ${show(cond)}`);
    },
    throws(fn, substring) {
      try {
        fn();
      } catch (e) {
        return checkError(e, substring, 'threw');
      }
      throw new AssertionError(`expected a throw containing ${show(substring)}, but nothing was thrown`);
    },
    async rejects(promise, substring) {
      let value: unknown;
      try {
        value = await promise;
      } catch (e) {
        return checkError(e, substring, 'rejected');
      }
      throw new AssertionError(`expected a rejection containing ${show(substring)}, but it resolved with ${show(value)}`);
    },
  };
}

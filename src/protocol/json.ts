/**
 * A strict JSON reader that keeps integers exact: JSON.parse turns 1795721654822870144 into
 * 1795721654822870000. Integers come back as bigint; other numbers as number. Depth-limited.
 */
export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | { [k: string]: JsonValue };

const MAX_DEPTH = 32;

export function parseJsonExact(text: string): { value: JsonValue } | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
  };
  const fail = (): never => {
    throw new SyntaxError('bad JSON');
  };
  const value = (depth: number): JsonValue => {
    if (depth > MAX_DEPTH) fail();
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: { [k: string]: JsonValue } = Object.create(null) as { [k: string]: JsonValue };
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        const k = str();
        ws();
        if (text[i++] !== ':') fail();
        obj[k] = value(depth + 1);
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') {
          i++;
          return obj;
        } else fail();
      }
    }
    if (c === '[') {
      i++;
      const arr: JsonValue[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') {
          i++;
          return arr;
        } else fail();
      }
    }
    if (c === '"') return str();
    if (text.startsWith('true', i)) return (i += 4), true;
    if (text.startsWith('false', i)) return (i += 5), false;
    if (text.startsWith('null', i)) return (i += 4), null;
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m) return fail();
    i += m[0].length;
    return m[2] === undefined && m[3] === undefined ? BigInt(m[0]) : Number(m[0]);
  };
  const str = (): string => {
    const start = i;
    i++;
    for (; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      if (ch === 0x22) {
        i++;
        return JSON.parse(text.slice(start, i)) as string;
      }
      if (ch === 0x5c) i++;
      else if (ch < 0x20) fail();
    }
    return fail();
  };
  try {
    const v = value(0);
    ws();
    if (i !== text.length) return undefined;
    return { value: v };
  } catch {
    return undefined;
  }
}

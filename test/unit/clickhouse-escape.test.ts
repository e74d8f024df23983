import { describe, expect, it } from 'vitest';
import { ConfigError, InvalidArgumentError } from '../../src/util/errors.js';
import { parseClickHouseUrl } from '../../src/history/clickhouse/http.js';
import { RowBinaryWriter } from '../../src/history/clickhouse/row-binary.js';
import { isWellFormed, sqlIdentifier, sqlInt, sqlString } from '../../src/history/clickhouse/sql.js';

describe('sqlString', () => {
  it('quotes and backslash-escapes quote and backslash', () => {
    expect(sqlString('')).toBe("''");
    expect(sqlString('binance:spot:BTCUSDT')).toBe("'binance:spot:BTCUSDT'");
    expect(sqlString("X'); DROP TABLE t; --")).toBe("'X\\'); DROP TABLE t; --'");
    expect(sqlString('a\\')).toBe("'a\\\\'");
    expect(sqlString("\\'")).toBe("'\\\\\\''");
  });

  it('escapes every control character and DEL, and nothing else of ASCII', () => {
    expect(sqlString('\n\r\t\0\b\f')).toBe("'\\n\\r\\t\\0\\b\\f'");
    expect(sqlString('\u0001\u001f\u007f\u001b')).toBe("'\\x01\\x1F\\x7F\\x1B'");
    for (let c = 0x20; c < 0x7f; c++) {
      const ch = String.fromCharCode(c);
      if (ch === "'" || ch === '\\') continue;
      expect(sqlString(ch)).toBe(`'${ch}'`);
    }
  });

  it('passes other characters through as they are (sent as UTF-8)', () => {
    expect(sqlString('日本 😀 \u2028 \u00ff ?{x:String}$1')).toBe("'日本 😀 \u2028 \u00ff ?{x:String}$1'");
  });

  it('never leaves an unescaped quote or a trailing backslash that could end the literal', () => {
    const alphabet = ["'", '\\', '"', '`', '\n', '\0', 'a', ';', '-'];
    for (let i = 0; i < 2000; i++) {
      const s = Array.from(
        { length: 1 + (i % 12) },
        () => alphabet[Math.floor(Math.random() * alphabet.length)],
      ).join('');
      const lit = sqlString(s);
      const inner = lit.slice(1, -1);
      // Reading the literal back with ClickHouse's rules gives the input, and the whole literal is consumed.
      let out = '';
      let j = 0;
      for (; j < inner.length; j++) {
        const ch = inner[j];
        expect(ch).not.toBe("'");
        if (ch !== '\\') {
          out += ch ?? '';
          continue;
        }
        const e = inner[++j];
        const named: Record<string, string> = { n: '\n', r: '\r', t: '\t', '0': '\0', b: '\b', f: '\f' };
        if (e === 'x') {
          out += String.fromCharCode(parseInt(inner.slice(j + 1, j + 3), 16));
          j += 2;
        } else out += e !== undefined ? (named[e] ?? e) : '';
      }
      expect(out).toBe(s);
    }
  });

  it('refuses lone surrogates and non-strings', () => {
    expect(() => sqlString('a\ud800')).toThrow(InvalidArgumentError);
    expect(() => sqlString('\udc00b')).toThrow(InvalidArgumentError);
    expect(() => sqlString(1 as unknown as string)).toThrow(InvalidArgumentError);
    expect(isWellFormed('😀')).toBe(true);
    expect(isWellFormed('\ud83d')).toBe(false);
  });
});

describe('sqlInt', () => {
  it('renders safe integers exactly, without exponent', () => {
    expect(sqlInt(0)).toBe('0');
    expect(sqlInt(-0)).toBe('0');
    expect(sqlInt(1770724800000)).toBe('1770724800000');
    expect(sqlInt(Number.MAX_SAFE_INTEGER)).toBe('9007199254740991');
    expect(sqlInt(-5, -10)).toBe('-5');
  });

  it('refuses anything else', () => {
    for (const v of [1.5, NaN, Infinity, -Infinity, 2 ** 53, 1e21, -1])
      expect(() => sqlInt(v)).toThrow(InvalidArgumentError);
    expect(() => sqlInt('1' as unknown as number)).toThrow(InvalidArgumentError);
    expect(() => sqlInt(3, 5)).toThrow(InvalidArgumentError);
  });
});

describe('sqlIdentifier', () => {
  it('back-quotes plain identifiers only', () => {
    expect(sqlIdentifier('market_data')).toBe('`market_data`');
    for (const bad of ['', '1db', 'a-b', 'a`b', 'a b', 'db.t', 'x'.repeat(65), 'é']) {
      expect(() => sqlIdentifier(bad)).toThrow(InvalidArgumentError);
    }
  });
});

describe('RowBinaryWriter', () => {
  it('encodes strings, 64-bit integers, floats and nullable floats little-endian', () => {
    const w = new RowBinaryWriter(4);
    w.string('hé').uint64(1770724800000).int64(-2).float64(0.1).nullableFloat64(null).nullableFloat64(-0);
    const b = w.finish();
    const expected = Buffer.alloc(3 + 1 + 8 + 8 + 8 + 1 + 9);
    let o = 0;
    o = expected.writeUInt8(3, o);
    o += expected.write('hé', o, 'utf8');
    o = expected.writeBigUInt64LE(1770724800000n, o);
    o = expected.writeBigInt64LE(-2n, o);
    o = expected.writeDoubleLE(0.1, o);
    o = expected.writeUInt8(1, o);
    o = expected.writeUInt8(0, o);
    expected.writeDoubleLE(-0, o);
    expect(b).toEqual(expected);
  });

  it('writes string lengths as LEB128 varints', () => {
    const w = new RowBinaryWriter(1);
    w.string('a'.repeat(300));
    const b = w.finish();
    expect([...b.subarray(0, 2)]).toEqual([0xac, 0x02]);
    expect(b.length).toBe(302);
  });
});

describe('parseClickHouseUrl', () => {
  it('splits origin, credentials and database', () => {
    expect(parseClickHouseUrl('http://127.0.0.1:8123')).toEqual({
      origin: 'http://127.0.0.1:8123',
      username: '',
      password: '',
      database: undefined,
    });
    expect(parseClickHouseUrl('https://u%40x:p%3Aw@ch.example:8443/market_data/')).toEqual({
      origin: 'https://ch.example:8443',
      username: 'u@x',
      password: 'p:w',
      database: 'market_data',
    });
  });

  it('throws ConfigErrors naming the key, without the password', () => {
    for (const bad of [
      '',
      'nope',
      'tcp://h:9000',
      'http://h/a/b',
      'http://h/?database=x',
      'http://u:pw123@h/bad-db',
    ]) {
      let err: unknown;
      try {
        parseClickHouseUrl(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).key).toBe('CLICKHOUSE_URL');
      expect((err as ConfigError).message).not.toContain('pw123');
    }
    expect(() => parseClickHouseUrl('nope', 'history.url')).toThrow(/history\.url/);
  });
});

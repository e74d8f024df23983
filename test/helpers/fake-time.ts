/** A test clock and a sleep that only moves it: time-based limits checked without waiting. */
export interface FakeTime {
  t: number;
  /** Every sleep asked for, ms, in order. */
  readonly slept: number[];
  readonly clock: () => number;
  readonly sleep: (ms: number) => Promise<void>;
}

export function fakeTime(start = 0): FakeTime {
  const s: FakeTime = {
    t: start,
    slept: [],
    clock: () => s.t,
    sleep: (ms: number) => {
      s.slept.push(ms);
      s.t += ms;
      return Promise.resolve();
    },
  };
  return s;
}

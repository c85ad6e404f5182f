// Terminal colours, only when a person is watching (a TTY) and NO_COLOR is unset.
const on = process.stdout.isTTY === true && !process.env.NO_COLOR;
const wrap = (code: number, reset: number) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[${reset}m` : s);

export const style = {
  bold: wrap(1, 22),
  dim: wrap(2, 22),
  red: wrap(31, 39),
  green: wrap(32, 39),
  yellow: wrap(33, 39),
  cyan: wrap(36, 39),
  isTty: on,
};

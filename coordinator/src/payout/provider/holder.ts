import { normalizeDocument } from "@ponte/common";

/**
 * True when `shown` (a CPF/CNPJ as a DICT lookup returns it, possibly masked with "*", e.g.
 * "***.456.789-**") is consistent with the full document `full`: same length once punctuation is
 * stripped, and every visible character equal. A fully masked value never matches: it proves nothing.
 */
export function matchesMaskedTaxId(shown: string, full: string): boolean {
  const s = normalizeDocument(shown);
  const f = normalizeDocument(full);
  if (s.length !== f.length || s.length === 0) return false;
  let visible = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "*") continue;
    if (s[i] !== f[i]) return false;
    visible++;
  }
  return visible > 0;
}

/** True when the value carries a mask character anywhere. */
export const isMaskedTaxId = (shown: string): boolean => shown.includes("*");

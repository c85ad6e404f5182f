import { PonteError } from "./errors.js";

// PIX key formats as the Banco Central's DICT defines them. CPF/CNPJ check digits;
// CNPJ may be alphanumeric (IN RFB 2.229/2024): letters in the first 12 characters, each
// counted as its ASCII code − 48.
export const PIX_KEY_TYPES = ["cpf", "cnpj", "email", "phone", "evp"] as const;
export type PixKeyType = (typeof PIX_KEY_TYPES)[number];
export const MAX_PIX_KEY_LENGTH = 77;

export function isValidCpf(s: string): boolean {
  if (!/^\d{11}$/.test(s) || /^(\d)\1{10}$/.test(s)) return false;
  const d = [...s].map(Number);
  const dv = (n: number) => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += d[i]! * (n + 1 - i);
    const r = (sum * 10) % 11;
    return r === 10 ? 0 : r;
  };
  return dv(9) === d[9] && dv(10) === d[10];
}

export function isValidCnpj(s: string): boolean {
  if (!/^[0-9A-Z]{12}\d{2}$/.test(s) || /^(\d)\1{13}$/.test(s)) return false;
  const v = [...s].map((c) => c.charCodeAt(0) - 48);
  const dv = (n: number) => {
    const weights = n === 12 ? [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2] : [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
    let sum = 0;
    for (let i = 0; i < n; i++) sum += v[i]! * weights[i]!;
    const r = sum % 11;
    return r < 2 ? 0 : 11 - r;
  };
  return dv(12) === v[12] && dv(13) === v[13];
}

export const isValidDocument = (s: string): boolean => isValidCpf(s) || isValidCnpj(s);

/** Strips the punctuation people type in documents ("123.456.789-09", "12.ABC.345/01DE-35"). */
export const normalizeDocument = (s: string): string => s.replace(/[.\-/\s]/g, "").toUpperCase();

const EMAIL = /^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;
const PHONE = /^\+55[1-9]{2}9?\d{8}$/;
const EVP = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Returns the key in its canonical form, or throws INVALID_PIX_KEY naming the rule broken. */
export function normalizePixKey(type: PixKeyType, key: string): string {
  const fail = (message: string): never => {
    throw new PonteError("INVALID_PIX_KEY", message, { key_type: type });
  };
  if (key.length === 0 || key.length > MAX_PIX_KEY_LENGTH) fail(`key must be 1 to ${MAX_PIX_KEY_LENGTH} characters`);
  switch (type) {
    case "cpf": {
      const k = normalizeDocument(key);
      return isValidCpf(k) ? k : fail("key is not a valid CPF");
    }
    case "cnpj": {
      const k = normalizeDocument(key);
      return isValidCnpj(k) ? k : fail("key is not a valid CNPJ");
    }
    case "email":
      return key === key.toLowerCase() && EMAIL.test(key) ? key : fail("key must be a lowercase e-mail address");
    case "phone":
      return PHONE.test(key) ? key : fail('key must be a Brazilian phone number in E.164, like "+5511987654321"');
    case "evp":
      return EVP.test(key) ? key : fail("key must be a random key (EVP): a lowercase UUID");
  }
}

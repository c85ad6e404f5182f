// ECDSA over secp256k1 with SHA-256 and DER signatures in base64 — what Stark Bank's SDKs
// (starkbank-ecdsa) produce and accept. node:crypto does it natively; no extra dependency.
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";

const CURVE = "secp256k1";

function assertCurve(key: KeyObject, what: string): KeyObject {
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== CURVE) {
    throw new Error(`${what} must be an EC ${CURVE} key`);
  }
  return key;
}

/** SEC1 ("EC PRIVATE KEY", with or without an "EC PARAMETERS" block) or PKCS#8 PEM. */
export function loadPrivateKey(pem: string): KeyObject {
  return assertCurve(createPrivateKey(normalizePem(pem)), "The private key");
}

export function loadPublicKey(pem: string): KeyObject {
  return assertCurve(createPublicKey(normalizePem(pem)), "The public key");
}

/** Env files often carry PEMs on one line with literal "\n". */
export const normalizePem = (pem: string): string => pem.replace(/\\n/g, "\n").trim() + "\n";

export function signMessage(key: KeyObject, message: string): string {
  return sign("sha256", Buffer.from(message, "utf8"), { key, dsaEncoding: "der" }).toString("base64");
}

/** False for a wrong or malformed signature (crypto.verify reports malformed DER as false, not a throw). */
export function verifyMessage(key: KeyObject, message: string, signatureBase64: string): boolean {
  const sig = Buffer.from(signatureBase64.trim(), "base64");
  if (sig.length === 0) return false;
  return verify("sha256", Buffer.from(message, "utf8"), { key, dsaEncoding: "der" }, sig);
}

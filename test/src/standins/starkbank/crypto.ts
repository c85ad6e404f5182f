// The stand-in's own ECDSA (secp256k1, SHA-256, DER/base64), written independently of the
// adapter's so that a mistake on one side is not mirrored on the other.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  privateKeyPem: string;
  publicKeyPem: string;
}

/** A fresh secp256k1 pair; the private key as SEC1 PEM, the format Stark Bank's tools produce. */
export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "secp256k1" });
  return {
    privateKey,
    publicKey,
    privateKeyPem: privateKey.export({ type: "sec1", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

export function keyPairFromPrivatePem(pem: string): KeyPair {
  const privateKey = createPrivateKey(pem);
  const publicKey = createPublicKey(privateKey);
  return {
    privateKey,
    publicKey,
    privateKeyPem: pem,
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

export const publicKeyFromPem = (pem: string): KeyObject => createPublicKey(pem);

export const signBase64 = (key: KeyObject, message: string): string =>
  sign("sha256", Buffer.from(message, "utf8"), { key, dsaEncoding: "der" }).toString("base64");

export function verifyBase64(key: KeyObject, message: string, signature: string): boolean {
  const sig = Buffer.from(signature, "base64");
  return sig.length > 0 && verify("sha256", Buffer.from(message, "utf8"), { key, dsaEncoding: "der" }, sig);
}

/** The three headers a Stark Bank client sends; for tests that call the stand-in directly. */
export function signedHeaders(accessId: string, privateKey: KeyObject, body: string, unixSeconds = Date.now() / 1000) {
  const accessTime = String(Math.floor(unixSeconds));
  return {
    "Access-Id": accessId,
    "Access-Time": accessTime,
    "Access-Signature": signBase64(privateKey, `${accessId}:${accessTime}:${body}`),
  };
}

import { describe, expect, it } from "vitest";
import { isValidCnpj, isValidCpf, normalizeDocument, normalizePixKey } from "./pix.js";

describe("PIX keys and documents", () => {
  it("checks CPF digits", () => {
    expect(isValidCpf("52998224725")).toBe(true);
    expect(isValidCpf(normalizeDocument("529.982.247-25"))).toBe(true);
    expect(isValidCpf("52998224724")).toBe(false);
    expect(isValidCpf("11111111111")).toBe(false);
    expect(isValidCpf("5299822472")).toBe(false);
  });

  it("checks numeric and alphanumeric CNPJ digits (IN RFB 2.229/2024)", () => {
    expect(isValidCnpj("11222333000181")).toBe(true);
    expect(isValidCnpj("11222333000182")).toBe(false);
    // The Receita Federal's published example of an alphanumeric CNPJ.
    expect(isValidCnpj(normalizeDocument("12.ABC.345/01DE-35"))).toBe(true);
    expect(isValidCnpj("12ABC34501DE36")).toBe(false);
    expect(isValidCnpj("12ABC34501DEAB")).toBe(false);
  });

  it("normalises and validates each key type", () => {
    expect(normalizePixKey("cpf", "529.982.247-25")).toBe("52998224725");
    expect(normalizePixKey("phone", "+5511987654321")).toBe("+5511987654321");
    expect(normalizePixKey("email", "maria@example.com")).toBe("maria@example.com");
    expect(normalizePixKey("evp", "123e4567-e89b-12d3-a456-426614174000")).toBe("123e4567-e89b-12d3-a456-426614174000");
    for (const [type, key] of [
      ["phone", "11987654321"],
      ["phone", "+1 555 0100"],
      ["email", "Maria@Example.com"],
      ["email", `${"a".repeat(70)}@example.com`],
      ["evp", "123E4567-E89B-12D3-A456-426614174000"],
      ["cnpj", "11222333000182"],
    ] as const) {
      expect(() => normalizePixKey(type, key), `${type} ${key}`).toThrow(/key/);
    }
  });
});

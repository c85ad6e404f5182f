import { describe, expect, it } from "vitest";
import { isMaskedTaxId, matchesMaskedTaxId } from "./holder.js";

describe("matchesMaskedTaxId", () => {
  it("matches a DICT-masked CPF on its visible digits", () => {
    expect(matchesMaskedTaxId("***.456.789-**", "123.456.789-09")).toBe(true);
    expect(matchesMaskedTaxId("***.456.789-**", "12345678909")).toBe(true);
    expect(matchesMaskedTaxId("***.456.780-**", "12345678909")).toBe(false);
  });

  it("compares a CNPJ in full, alphanumeric ones included", () => {
    expect(matchesMaskedTaxId("11.222.333/0001-81", "11222333000181")).toBe(true);
    expect(matchesMaskedTaxId("11.222.333/0001-81", "11222333000182")).toBe(false);
    expect(matchesMaskedTaxId("12.abc.345/01de-35", "12ABC34501DE35")).toBe(true);
  });

  it("never matches across lengths or on a fully masked value", () => {
    expect(matchesMaskedTaxId("***.456.789-**", "11222333000181")).toBe(false);
    expect(matchesMaskedTaxId("***.***.***-**", "12345678909")).toBe(false);
    expect(matchesMaskedTaxId("", "")).toBe(false);
  });

  it("tells masked values apart", () => {
    expect(isMaskedTaxId("***.456.789-**")).toBe(true);
    expect(isMaskedTaxId("11.222.333/0001-81")).toBe(false);
  });
});

/**
 * Bearer token check in constant time.
 *
 * Both sides are hashed with SHA-256 first, so the comparison always walks
 * 32 bytes whatever the lengths: neither a length mismatch nor the position
 * of the first differing byte shows in the timing.
 */

async function digest(text: string): Promise<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** Whether `given` equals `expected`, compared without an early exit. */
export async function tokensMatch(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([digest(given), digest(expected)]);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/** The token of an `Authorization: Bearer ...` header, or null. */
export function bearerToken(header: string | null): string | null {
  if (header === null) return null;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match ? (match[1] ?? null) : null;
}

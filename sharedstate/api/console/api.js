// @ts-check
// The console's API client: the session's token, JSON (or lossless) bodies, errors as ApiError.
import { parse } from "./ljson.js";

/** @type {{ token: string | null, role: string | null, events: AbortController | null }} */
export const session = { token: sessionStorage.getItem("sharedstate-token"), role: null, events: null };
const RANK = { read: 1, write: 2, admin: 3 };

/** @param {"read" | "write" | "admin"} role */
export const can = (role) => (RANK[/** @type {keyof RANK} */ (session.role)] ?? 0) >= RANK[role];

export class ApiError extends Error {
  /** @param {number} status @param {any} body @param {Headers} headers */
  constructor(status, body, headers) {
    const detail = body && typeof body === "object" ? body.detail : body;
    const text = typeof detail === "string" ? detail : JSON.stringify(detail);
    super(`${status} ${body && body.error ? body.error : "error"}: ${text}`);
    this.status = status; this.body = body; this.headers = headers;
  }
}

/**
 * One API call. ``lossless``: parse the answer with ljson (numbers keep their text).
 * @param {string} method
 * @param {string} path
 * @param {{ body?: unknown, headers?: Record<string, string>, lossless?: boolean }} [options]
 * @returns {Promise<{ status: number, data: any, headers: Headers }>}
 */
export async function api(method, path, { body, headers = {}, lossless = false } = {}) {
  /** @type {RequestInit & { headers: Record<string, string> }} */
  const options = { method, headers: { ...headers, Authorization: `Bearer ${session.token}` } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const text = await response.text();
  let data = null;
  try { data = text ? (response.ok && lossless ? parse(text) : JSON.parse(text)) : null; } catch { data = text; }
  if (!response.ok) throw new ApiError(response.status, data, response.headers);
  return { status: response.status, data, headers: response.headers };
}

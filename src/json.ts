/** A JSON object as JSON.parse gives it: members of unknown types, nothing trusted. */
export type Obj = Record<string, unknown>;

/** An object that is not null and not an array: what a JSON object parses to. */
export function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

import { JarvisError } from '../../errors.js';
import { isObject, type Obj } from '../../json.js';

/**
 * A tool's JSON Schema as the Schema Gemini takes in `functionDeclarations[].parameters` (an OpenAPI 3.0 subset).
 * Gemini refuses a keyword it does not know, so every keyword is either kept, converted, left out (it only narrows
 * what the model may send, and Gemini has no way to say it) or refused with a 400 naming where it is. The rules
 * are GEMINI_SCHEMA_RULES, listed in docs/providers.md.
 */
export const GEMINI_SCHEMA_RULES: readonly { keyword: string; becomes: string }[] = [
  { keyword: 'type, description, title, enum (strings), properties, required, items, anyOf, nullable, minimum, maximum, minItems, maxItems, minLength, maxLength, minProperties, maxProperties, pattern, default, example, propertyOrdering', becomes: 'kept (type in upper case)' },
  { keyword: 'type: [T, "null"]', becomes: 'type T, nullable: true' },
  { keyword: 'type: [T, U, …]', becomes: 'anyOf of each type' },
  { keyword: 'const', becomes: 'enum of the one value (strings only)' },
  { keyword: 'oneOf', becomes: 'anyOf' },
  { keyword: 'allOf of one schema', becomes: 'that schema' },
  { keyword: '$ref to #/$defs or #/definitions', becomes: 'the definition inlined (a recursive one is refused)' },
  { keyword: 'examples', becomes: 'example (the first)' },
  { keyword: 'format', becomes: 'kept where Gemini has it (date-time and enum for strings, int32/int64, float/double), else left out' },
  { keyword: 'additionalProperties, unevaluatedProperties, $schema, $id, $comment, $defs, definitions, readOnly, writeOnly, deprecated, contentEncoding, contentMediaType', becomes: 'left out' },
  { keyword: 'enum of non-strings, not, if/then/else, patternProperties, prefixItems, contains, uniqueItems, multipleOf, exclusiveMinimum, exclusiveMaximum, dependentRequired, dependentSchemas, allOf of several, any other keyword', becomes: 'refused: 400 unsupported_value' },
];

const KEPT = new Set([
  'description', 'title', 'nullable', 'required', 'minimum', 'maximum', 'minItems', 'maxItems', 'minLength', 'maxLength',
  'minProperties', 'maxProperties', 'pattern', 'default', 'example', 'propertyOrdering',
]);
const LEFT_OUT = new Set([
  'additionalProperties', 'unevaluatedProperties', '$schema', '$id', '$comment', '$defs', 'definitions', 'readOnly', 'writeOnly',
  'deprecated', 'contentEncoding', 'contentMediaType',
]);
const FORMATS: Record<string, Set<string>> = {
  STRING: new Set(['date-time', 'enum']),
  INTEGER: new Set(['int32', 'int64']),
  NUMBER: new Set(['float', 'double']),
};
const TYPES = new Set(['STRING', 'NUMBER', 'INTEGER', 'BOOLEAN', 'ARRAY', 'OBJECT', 'NULL']);
/** How deep $refs may nest before the schema is taken for recursive. */
const MAX_DEPTH = 32;

function refused(param: string, why: string): JarvisError {
  return new JarvisError('JARVIS_ERR_UNSUPPORTED_VALUE', `${why} (this model is served by Google's Gemini API, whose schemas do not take it).`, { param });
}

/** `schema` (a tool's `parameters`, at `param`) as Gemini's Schema. */
export function toGeminiSchema(schema: Obj, param: string): Obj {
  const defs = { ...(isObject(schema.definitions) ? schema.definitions : {}), ...(isObject(schema.$defs) ? schema.$defs : {}) };
  const convert = (s: unknown, at: string, depth: number): Obj => {
    if (!isObject(s)) throw refused(at, 'A schema must be an object');
    if (depth > MAX_DEPTH) throw refused(at, 'A recursive schema ($ref to itself) is not supported');
    if (typeof s.$ref === 'string') {
      const name = /^#\/(?:\$defs|definitions)\/([^/]+)$/.exec(s.$ref)?.[1];
      const target = name === undefined ? undefined : defs[decodeURIComponent(name)];
      if (!isObject(target)) throw refused(`${at}.$ref`, `$ref '${s.$ref}' is not supported: only references to #/$defs or #/definitions are`);
      const { $ref: _ref, ...rest } = s;
      return convert({ ...target, ...rest }, at, depth + 1);
    }
    if (Array.isArray(s.allOf)) {
      if (s.allOf.length !== 1) throw refused(`${at}.allOf`, 'allOf of more than one schema is not supported');
      const { allOf, ...rest } = s;
      return convert({ ...(allOf[0] as Obj), ...rest }, at, depth + 1);
    }
    const out: Obj = {};
    for (const [key, value] of Object.entries(s)) {
      const here = `${at}.${key}`;
      if (value === undefined) continue;
      if (KEPT.has(key)) out[key] = value;
      else if (LEFT_OUT.has(key) || key === 'format') continue;
      else if (key === 'type') Object.assign(out, typeOf(value, here));
      else if (key === 'enum' || key === 'const') {
        const values = key === 'const' ? [value] : value;
        if (!Array.isArray(values) || values.some((v) => typeof v !== 'string')) throw refused(here, `'${key}' with values other than strings is not supported`);
        out.enum = values;
      } else if (key === 'properties') {
        if (!isObject(value)) throw refused(here, "'properties' must be an object");
        out.properties = Object.fromEntries(Object.entries(value).map(([name, p]) => [name, convert(p, `${here}.${name}`, depth + 1)]));
      } else if (key === 'items') out.items = convert(value, here, depth + 1);
      else if (key === 'anyOf' || key === 'oneOf') {
        if (!Array.isArray(value)) throw refused(here, `'${key}' must be a list`);
        out.anyOf = value.map((v, i) => convert(v, `${here}[${i}]`, depth + 1));
      } else if (key === 'examples') {
        if (Array.isArray(value) && value.length > 0) out.example = value[0];
      } else throw refused(here, `The JSON Schema keyword '${key}' is not supported`);
    }
    if (typeof s.format === 'string' && typeof out.type === 'string' && FORMATS[out.type]?.has(s.format)) out.format = s.format;
    if (out.enum !== undefined && out.type === undefined) out.type = 'STRING';
    return out;
  };
  return convert(schema, param, 0);
}

/** A JSON Schema `type` (a name or a list of names) as Gemini's fields. */
function typeOf(value: unknown, at: string): Obj {
  const names = (Array.isArray(value) ? value : [value]).map((t) => (typeof t === 'string' ? t.toUpperCase() : ''));
  if (names.length === 0 || names.some((t) => !TYPES.has(t))) throw refused(at, `The schema type ${JSON.stringify(value)} is not supported`);
  const nullable = names.includes('NULL');
  const types = names.filter((t) => t !== 'NULL');
  if (types.length === 0) return { type: 'NULL' };
  if (types.length === 1) return nullable ? { type: types[0], nullable: true } : { type: types[0] };
  return { anyOf: types.map((type) => ({ type })), ...(nullable ? { nullable: true } : {}) };
}

// What the deployment files (Dockerfile, docker-compose.yml, the Helm chart) ask of Jarvis, read out of them: the
// environment variables they set and the HTTP paths their health checks and probes call. And what Jarvis knows:
// the variables src/config.ts reads, and the OpenTelemetry ones docs/operations.md lists.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { envOf, flagsOf, instructionsOf, parseDockerfile, wordsOf } from './dockerfile.js';

export const CHART = 'deploy/helm/jarvis';

const read = (root: string, path: string) => readFileSync(join(root, path), 'utf8');

/** Names that look like Jarvis's: JARVIS_*, REDIS_*, OTEL_*, HOST, PORT. */
export const JARVIS_LIKE = /^(JARVIS_[A-Z0-9_]+|REDIS_[A-Z0-9_]+|OTEL_[A-Z0-9_]+|HOST|PORT)$/;

/** Every variable Jarvis reads: the names src/config.ts passes to its readers, and docs/operations.md's OTEL_* table. */
export function knownVariables(root: string): Set<string> {
  const known = new Set<string>();
  for (const m of read(root, 'src/config.ts').matchAll(/['"`]([A-Z][A-Z0-9_]*)['"`]/g)) if (JARVIS_LIKE.test(m[1]!)) known.add(m[1]!);
  for (const m of read(root, 'docs/operations.md').matchAll(/`(OTEL_[A-Z0-9_]+)`/g)) known.add(m[1]!);
  return known;
}

export interface Setting {
  name: string;
  /** Where it is set: file and place. */
  where: string;
}

/** A compose file's services, with the YAML merge keys (`<<: *jarvis`) applied. */
export interface ComposeService {
  build?: unknown;
  image?: string;
  environment?: Record<string, string | number | boolean | null> | string[];
  healthcheck?: { test?: string[] | string };
  [k: string]: unknown;
}

export function readCompose(root: string): { services: Record<string, ComposeService>; [k: string]: unknown } {
  return parseYaml(read(root, 'docker-compose.yml'), { merge: true }) as { services: Record<string, ComposeService> };
}

/** The services that run Jarvis: those built from the repository's Dockerfile. */
export function jarvisServices(root: string): [string, ComposeService][] {
  return Object.entries(readCompose(root).services).filter(([, s]) => s.build !== undefined);
}

function environmentNames(env: ComposeService['environment']): string[] {
  if (!env) return [];
  return Array.isArray(env) ? env.map((e) => e.split('=', 1)[0]!) : Object.keys(env);
}

/** Chart files: the templates and values.yaml, as text. */
export function chartFiles(root: string): { path: string; text: string }[] {
  const templates = readdirSync(join(root, CHART, 'templates')).sort().map((f) => `${CHART}/templates/${f}`);
  return [`${CHART}/values.yaml`, ...templates].map((path) => ({ path, text: read(root, path) }));
}

/**
 * Every environment variable the deployment files set for Jarvis: the Dockerfile's runtime ENV, the Jarvis services'
 * `environment` in the compose file, the chart's ConfigMap (values.yaml `config`), the Deployment's `env` names and
 * the Secret's keys (each becomes the variable of the same name).
 */
export function settingsSet(root: string): Setting[] {
  const out: Setting[] = [];
  const docker = parseDockerfile(read(root, 'Dockerfile'));
  for (const name of Object.keys(envOf(docker.stages.at(-1)!))) out.push({ name, where: 'Dockerfile ENV' });
  for (const [service, s] of jarvisServices(root)) {
    for (const name of environmentNames(s.environment)) out.push({ name, where: `docker-compose.yml services.${service}.environment` });
  }
  const values = parseYaml(read(root, `${CHART}/values.yaml`)) as { config?: Record<string, unknown> };
  for (const name of Object.keys(values.config ?? {})) out.push({ name, where: `${CHART}/values.yaml config` });
  for (const { path, text } of chartFiles(root)) {
    if (!path.includes('/templates/')) continue;
    // `- name: JARVIS_X` in a container's env, and `JARVIS_X: ...` keys of a Secret's stringData.
    for (const m of text.matchAll(/^\s*- name: "?([A-Z][A-Z0-9_]*)"?\s*$/gm)) out.push({ name: m[1]!, where: `${path} env` });
    for (const m of text.matchAll(/^\s*([A-Z][A-Z0-9_]*):\s/gm)) out.push({ name: m[1]!, where: `${path} key` });
    for (const m of text.matchAll(/"name" "([A-Z][A-Z0-9_]*)"/g)) out.push({ name: m[1]!, where: `${path} secret env` });
  }
  return out;
}

/** Every JARVIS_* / REDIS_* / OTEL_* word anywhere in the deployment files, comments included: a typo is a lie too. */
export function variablesMentioned(root: string): Setting[] {
  const files = ['Dockerfile', 'docker-compose.yml', 'deploy/nginx/jarvis.conf', ...chartFiles(root).map((f) => f.path)];
  const out: Setting[] = [];
  for (const path of files) {
    for (const m of read(root, path).matchAll(/\b(JARVIS_[A-Z0-9_]*[A-Z0-9]|REDIS_[A-Z0-9_]*[A-Z0-9]|OTEL_[A-Z0-9_]*[A-Z0-9])\b/g)) out.push({ name: m[1]!, where: path });
  }
  return out;
}

export interface Probe {
  path: string;
  where: string;
}

/** The URL paths in a health check command: `http://host[:port]/path`, or a quoted '/path' appended to a URL. */
function pathsIn(command: string): string[] {
  const paths = new Set<string>();
  for (const m of command.matchAll(/https?:\/\/[^/\s'"]+(\/[\w./-]*)/g)) paths.add(m[1]!);
  for (const m of command.matchAll(/['"](\/[\w./-]+)['"]/g)) paths.add(m[1]!);
  return [...paths];
}

/** The Dockerfile's HEALTHCHECK, the compose file's health checks that call Jarvis's HTTP, and the chart's probes. */
export function probes(root: string): Probe[] {
  const out: Probe[] = [];
  const docker = parseDockerfile(read(root, 'Dockerfile'));
  for (const ins of instructionsOf(docker.stages.at(-1)!, 'HEALTHCHECK')) {
    const { rest } = flagsOf(ins.args);
    const cmd = rest.replace(/^CMD\s+/, '');
    const words = cmd.startsWith('[') ? wordsOf(cmd) : [cmd];
    for (const path of pathsIn(words.join(' '))) out.push({ path, where: `Dockerfile HEALTHCHECK (line ${ins.line})` });
  }
  for (const [service, s] of Object.entries(readCompose(root).services)) {
    const test = s.healthcheck?.test;
    if (!test) continue;
    const command = Array.isArray(test) ? test.join(' ') : test;
    for (const path of pathsIn(command)) out.push({ path, where: `docker-compose.yml services.${service}.healthcheck` });
  }
  for (const { path, text } of chartFiles(root)) {
    for (const m of text.matchAll(/httpGet:\s*\n\s*path:\s*"?([^\s"]+)"?/g)) out.push({ path: m[1]!, where: `${path} httpGet` });
  }
  return out;
}

/** `{{ ... }}` actions opened (if, range, with, define, block) and closed (end) in a Go template, in order. */
export function unbalancedActions(text: string): string | undefined {
  const stack: string[] = [];
  for (const m of text.matchAll(/\{\{-?\s*([\s\S]*?)\s*-?\}\}/g)) {
    const action = m[1]!;
    if (action.startsWith('/*')) continue;
    const word = /^(\w+)/.exec(action)?.[1];
    if (word === 'if' || word === 'range' || word === 'with' || word === 'define' || word === 'block') stack.push(action);
    else if (word === 'end' && stack.pop() === undefined) return `an {{ end }} with nothing open, at offset ${m.index}`;
  }
  return stack.length ? `not closed: ${stack.map((s) => `{{ ${s} }}`).join(', ')}` : undefined;
}

/** `.Values.a.b` paths a template reads. */
export function valuesRead(text: string): string[] {
  return [...new Set([...text.matchAll(/\.Values\.([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)/g)].map((m) => m[1]!))];
}

// The repository's Dockerfile read as Docker reads it (instructions, line continuations, stages), and its runtime
// stage's install done as that stage does it, in a plain folder: its COPYs in order (from the repository, or what
// the build stage built) and its `npm ci` commands, run with the machine's npm. No Docker daemon is needed, and the
// test follows the file: a COPY or an npm flag changed there is what the test does.
import { spawn } from 'node:child_process';
import { cp, mkdir, stat } from 'node:fs/promises';
import { basename, join, posix } from 'node:path';

export interface Instruction {
  /** Upper-cased: FROM, RUN, COPY, ENV, ... */
  op: string;
  /** The rest of the instruction, continuation lines joined. */
  args: string;
  /** Line of the instruction's first line (1-based). */
  line: number;
}

export interface Stage {
  /** The image it starts from, as written (an ARG like ${NODE_IMAGE} resolved). */
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  args: Record<string, string>;
  stages: Stage[];
}

/** Parses a Dockerfile: comments and blank lines skipped, `\` continuations joined, stages split at FROM. */
export function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const first = lines[i]!;
    if (/^\s*(#|$)/.test(first)) continue;
    const start = i;
    let joined = first;
    while (/\\\s*$/.test(joined) && i + 1 < lines.length) {
      joined = joined.replace(/\\\s*$/, ' ');
      i++;
      // Comment lines inside a continuation are dropped, as Docker does.
      if (!/^\s*#/.test(lines[i]!)) joined += lines[i]!;
    }
    const m = /^\s*(\w+)\s+([\s\S]*)$/.exec(joined);
    if (!m) throw new Error(`Dockerfile line ${start + 1}: not an instruction: ${first}`);
    instructions.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start + 1 });
  }
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`Dockerfile line ${ins.line}: FROM ${ins.args}`);
      const from = m[1]!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => args[(a ?? b)!] ?? '');
      stages.push({ from, name: m[2], instructions: [] });
    } else if (stages.length === 0) {
      if (ins.op !== 'ARG') throw new Error(`Dockerfile line ${ins.line}: ${ins.op} before the first FROM`);
      const [name, value = ''] = ins.args.split('=', 2) as [string, string?];
      args[name.trim()] = value.trim();
    } else {
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return { args, stages };
}

/** A stage's instructions of one kind. */
export const instructionsOf = (stage: Stage, op: string) => stage.instructions.filter((i) => i.op === op);

/** Splits an instruction's leading `--flag=value` options from the rest. */
export function flagsOf(args: string): { flags: Record<string, string>; rest: string } {
  const flags: Record<string, string> = {};
  let rest = args;
  for (let m = /^--([\w-]+)(?:=(\S*))?\s+/.exec(rest); m; m = /^--([\w-]+)(?:=(\S*))?\s+/.exec(rest)) {
    flags[m[1]!] = m[2] ?? '';
    rest = rest.slice(m[0].length);
  }
  return { flags, rest };
}

/** The words of an exec-form (JSON array) or shell-form argument list. */
export function wordsOf(rest: string): string[] {
  if (rest.startsWith('[')) return JSON.parse(rest) as string[];
  if (/["']/.test(rest)) throw new Error(`quoted shell-form arguments are not understood here: ${rest}`);
  return rest.split(/\s+/).filter(Boolean);
}

/** A COPY: where from (a stage, or the build context), its sources and its destination. */
export interface Copy {
  from: string | undefined;
  sources: string[];
  dest: string;
}

export function copyOf(ins: Instruction): Copy {
  const { flags, rest } = flagsOf(ins.args);
  const words = wordsOf(rest);
  if (words.length < 2) throw new Error(`Dockerfile line ${ins.line}: COPY needs a source and a destination`);
  return { from: flags.from, sources: words.slice(0, -1), dest: words.at(-1)! };
}

/** The `npm ci ...` commands in a RUN (a RUN may chain several commands with &&), as argument lists. */
export function npmCiCommands(ins: Instruction): string[][] {
  const { rest } = flagsOf(ins.args);
  if (rest.startsWith('[')) {
    const words = JSON.parse(rest) as string[];
    return words[0] === 'npm' && words[1] === 'ci' ? [words] : [];
  }
  return rest
    .split(/&&|;/)
    .map((part) => part.trim())
    .filter((part) => /^npm\s+ci(\s|$)/.test(part))
    .map((part) => wordsOf(part));
}

/** One ENV instruction's variables (`ENV A=1 B=2`, or the old `ENV A 1`). */
export function envPairs(ins: Instruction): Record<string, string> {
  const env: Record<string, string> = {};
  if (!ins.args.includes('=')) {
    const [name, ...value] = ins.args.split(/\s+/);
    env[name!] = value.join(' ');
    return env;
  }
  for (const pair of wordsOf(ins.args)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`Dockerfile line ${ins.line}: ENV ${pair}`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

/** A stage's ENV variables, in order (a later one wins). */
export function envOf(stage: Stage): Record<string, string> {
  return Object.assign({}, ...instructionsOf(stage, 'ENV').map(envPairs)) as Record<string, string>;
}

export interface StageInstall {
  /** The npm ci commands run, as written in the Dockerfile. */
  npmCi: string[][];
  /** What was copied, `source -> destination` (relative to the stage's WORKDIR). */
  copied: string[];
  /** RUN instructions not run here (they change the image's system, not the app folder): their text. */
  notRun: string[];
  /** Milliseconds each npm ci took. */
  npmMs: number[];
}

export interface InstallOptions {
  /** The repository: the build context of COPYs without --from. */
  context: string;
  /** The folder standing for the stage's WORKDIR. */
  dir: string;
  /** Paths another stage made, by their path in that stage (`/app/dist`), resolved when a COPY --from needs them. */
  built: Record<string, () => Promise<string>>;
  /** Environment for npm (its registry, cache and PATH); the stage's ENV before a RUN is added, as in a build. */
  env: NodeJS.ProcessEnv;
  /** Longest time one npm ci may take. */
  npmTimeoutMs: number;
}

/** Does what a stage's COPY and RUN npm ci instructions do, in order, into `dir`. */
export async function installStage(stage: Stage, opts: InstallOptions): Promise<StageInstall> {
  const out: StageInstall = { npmCi: [], copied: [], notRun: [], npmMs: [] };
  let workdir = '/';
  let env: NodeJS.ProcessEnv = { ...opts.env };
  const local = (containerPath: string) => {
    const abs = posix.resolve(workdir, containerPath);
    const rel = posix.relative(workdir, abs);
    if (rel.startsWith('..')) throw new Error(`${containerPath} is outside the WORKDIR ${workdir}: not something the app folder holds`);
    return join(opts.dir, rel);
  };
  for (const ins of stage.instructions) {
    if (ins.op === 'WORKDIR') {
      workdir = posix.resolve(workdir, ins.args);
    } else if (ins.op === 'ENV') {
      env = { ...env, ...envPairs(ins) };
    } else if (ins.op === 'COPY' || ins.op === 'ADD') {
      if (ins.op === 'ADD') throw new Error(`Dockerfile line ${ins.line}: ADD is not followed here; use COPY`);
      const copy = copyOf(ins);
      const intoDir = copy.dest.endsWith('/') || copy.sources.length > 1;
      for (const source of copy.sources) {
        let from: string;
        if (copy.from !== undefined) {
          const make = opts.built[source];
          if (!make) throw new Error(`Dockerfile line ${ins.line}: COPY --from=${copy.from} ${source}: the test does not know how to make it (add it to built)`);
          from = await make();
        } else {
          from = join(opts.context, source);
        }
        const isDir = (await stat(from)).isDirectory();
        const dest = intoDir && !isDir ? join(local(copy.dest), basename(source)) : local(copy.dest);
        await mkdir(isDir ? dest : join(dest, '..'), { recursive: true });
        await cp(from, dest, { recursive: true });
        out.copied.push(`${copy.from ? `${copy.from}:` : ''}${source} -> ${posix.relative(workdir, posix.resolve(workdir, copy.dest)) || '.'}`);
      }
    } else if (ins.op === 'RUN') {
      const commands = npmCiCommands(ins);
      if (commands.length === 0) out.notRun.push(ins.args);
      for (const words of commands) {
        const started = performance.now();
        await run(words[0]!, words.slice(1), { cwd: local('.'), env, timeoutMs: opts.npmTimeoutMs });
        out.npmMs.push(Math.round(performance.now() - started));
        out.npmCi.push(words);
      }
    }
  }
  return out;
}

/** Runs a command to its end; rejects with its output when it fails or outlives `timeoutMs`. */
export function run(command: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}) in ${opts.cwd}:\n${output.slice(-4000)}`));
    });
  });
}

import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/.cache/', 'bench/results/', 'logs/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-syntax': [
        'error',
        { selector: "MemberExpression[object.name='process'][property.name='env']", message: 'Read the environment only in src/main.ts and src/config.ts; pass config down.' }
      ]
    }
  },
  {
    files: ['src/main.ts', 'src/config.ts', 'test/**', 'scripts/**', 'bench/**', '**/*.test.ts'],
    rules: { 'no-restricted-syntax': 'off' }
  },
  {
    // The console's page script runs in the browser.
    files: ['console/**/*.js'],
    languageOptions: {
      globals: Object.fromEntries(['document', 'fetch', 'TextDecoder', 'AbortController', 'requestAnimationFrame', 'setTimeout', 'sessionStorage'].map((g) => [g, 'readonly'])),
    },
  }
);

import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // runtimes/: its build script and tests (TypeScript) and the node and provided loaders as the images carry
  // them, built from runtimes/*/src (their modules are fragments of one script, checked together once built).
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'data/**',
      'runtimes/**/*',
      '!runtimes/*.ts',
      '!runtimes/build/',
      '!runtimes/build/**',
      '!runtimes/node/',
      '!runtimes/node/loader.js',
      '!runtimes/provided/',
      '!runtimes/provided/loader.js',
      'examples/**',
      'coverage/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['runtimes/node/loader.js', 'runtimes/provided/loader.js'],
    languageOptions: { sourceType: 'commonjs', ecmaVersion: 2022, globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-require-imports': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  // The provided loader takes whole modules of the node loader and uses only part of them (the node
  // loader's build, linted above, is where their unused code would show).
  {
    files: ['runtimes/provided/loader.js'],
    rules: { '@typescript-eslint/no-unused-vars': 'off' },
  },
);

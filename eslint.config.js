import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // runtimes/: its build script and tests (TypeScript) and the node loader as the image carries it, built
  // from runtimes/node/src (its modules are fragments of one script, checked together once built).
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
    files: ['runtimes/node/loader.js'],
    languageOptions: { sourceType: 'commonjs', ecmaVersion: 2022, globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-require-imports': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
);

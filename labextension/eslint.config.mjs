// ESLint for the JupyterLab extension: the recommended JavaScript and typescript-eslint rules.
// Formatting is prettier's job (`jlpm prettier:check`); `jlpm lint` runs both.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['lib/', 'lib-test/', 'node_modules/', 'style/index.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // Names prefixed with _ are unused on purpose (interface-shaped callbacks).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }]
    }
  }
);

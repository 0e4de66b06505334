// Lint only for what the type checker does not catch and production has burnt us with:
// promises nobody awaits or catches (an unhandled rejection takes the process down).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', '.cache/**', '.data/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser, parserOptions: { projectService: true } },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': [
        'error',
        { checksVoidReturn: { arguments: false } },
      ],
    },
  },
  {
    // media/ sits beside sync/: the server wires it to the database, never the other way.
    files: ['media/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/server/*', '**/persistence/*', '**/integrations/*', '**/scripts/*'],
              message: 'media/ may import sync/ and libraries only (media/README.md)',
            },
          ],
        },
      ],
    },
  },
);

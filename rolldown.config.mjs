// The container init stage runs once per container start, in a fresh Node process: loading
// ~25 ES modules one by one costs it ~25 ms, a third of a container's start. Built into one
// file, it loads in one read. Everything else ships as tsc emits it.
export default {
  input: 'dist/namespaces/init/stage.js',
  platform: 'node',
  external: ['koffi', 'debug'],
  output: { file: 'dist/namespaces/init/stage.bundle.js', format: 'esm' },
};

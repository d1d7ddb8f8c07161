// --pre-js of the node test programs: the process environment (ASSET_TEST_SRCDIR, the
// nginx URL...) becomes the program's getenv(), which Emscripten otherwise fakes.
Module.preRun = Module.preRun || [];
Module.preRun.push(function () {
  if (typeof process === "object" && process.env) Object.assign(ENV, process.env);
});

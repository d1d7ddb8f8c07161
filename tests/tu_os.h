/* tu_os.h - the OS-specific half of the test helpers: tu_os_posix.c or tu_os_win32.c,
 * chosen by tests/CMakeLists.txt. Paths are in the library's form ('/', and on
 * Windows a drive: "Z:/tmp/asset_test_1234"). */
#ifndef TU_OS_H
#define TU_OS_H

/* Creates one directory (its parent exists); an existing one is fine. */
void tu_os_mkdir(const char *path);

#endif

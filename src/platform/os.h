/* platform/os.h - what each OS's file (fs_posix.c, fs_win32.c) gives the wrappers that
 * are the same on every OS (fs.c): the bare OS calls under platform.h's
 * asset__rename_over, asset__file_sync and asset__dir_sync_of, whose test hooks are
 * called there, once. Only src/platform includes it. Each returns 0 or an errno. */
#ifndef ASSET_PLATFORM_OS_H
#define ASSET_PLATFORM_OS_H

#include <stdbool.h>
#include <stdio.h>

/* Renames from over to, replacing a file there in one step (asset__rename_over). */
int asset__os_rename_over(const char *from, const char *to);
/* Has the OS put the flushed file f on the disk (asset__file_sync). */
int asset__os_file_sync(FILE *f);
/* Whether a rename's new name is on the disk only once its directory is synced
 * (POSIX: true; Windows: false, MOVEFILE_WRITE_THROUGH), and then the sync of the
 * directory dir (asset__dir_sync_of). */
extern const bool asset__os_syncs_dirs;
int asset__os_dir_sync(const char *dir);

#endif

/* sources/dir_root.c - a directory opened by its path and opened again when the path
 * names another one (renamed away or deleted, and made anew: a deploy swapping a release
 * in, an exporter replacing its output folder): file_root, and a watched directory
 * package (pkg.c). The one replaced is closed when its last read or listing is done. */
#include "../platform/fs.h"

#include <errno.h>

void asset__root_put(uv_mutex_t *mu, struct asset__root *rt) {
    if (!rt) return;
    uv_mutex_lock(mu);
    bool last = --rt->users == 0;
    uv_mutex_unlock(mu);
    if (!last) return;
    asset__dir_close(rt->dir);
    asset_free(rt);
}

/* The directory *slot holds while path still names it, else the one path names now,
 * which becomes *slot's (opened at create, else by the first load that can: a root
 * made after the server, or one that could not be opened then, out of descriptors, was
 * NOT_FOUND for the server's life; kept when replaced, its old files were read under
 * its URIs; kept until destroy, a server whose root each deploy swapped held one more
 * descriptor per swap: reviews). *out: a use of it, for asset__root_put. */
int asset__root_take(uv_mutex_t *mu, struct asset__root **slot, const char *path, bool watching,
                     struct asset__root **out) {
    uv_mutex_lock(mu);
    struct asset__root *rt = *slot;
    if (rt) rt->users++;
    uv_mutex_unlock(mu);
    if (rt && asset__dir_is_at(rt->dir, path, watching)) {
        *out = rt;
        return 0;
    }
    asset__dir_t *fresh = NULL;
    int err = asset__dir_open(path, &fresh);
    struct asset__root *nr = err ? NULL : asset_alloc(sizeof *nr);
    if (!nr) {
        asset__dir_close(fresh);
        if (!err && rt) { /* no memory for the new one: the old one serves */
            *out = rt;
            return 0;
        }
        asset__root_put(mu, rt);
        return err ? err : -ENOMEM;
    }
    nr->dir = fresh;
    nr->users = 2; /* the slot's, and this use's */
    struct asset__root *use = nr;
    uv_mutex_lock(mu);
    if (*slot == rt) {
        *slot = nr;
        if (rt) rt->users--; /* the slot's use of it ended (this one's has not) */
    } else {                 /* another use replaced it first: that one serves */
        use = *slot;
        use->users++;
    }
    uv_mutex_unlock(mu);
    if (use != nr) {
        asset__dir_close(fresh);
        asset_free(nr);
    }
    asset__root_put(mu, rt); /* this use of the one it found */
    *out = use;
    return 0;
}

/* sources/pkg.c - pkg://name/path: packages from mounted directories, compiled-in
 * tables, or the pkg_path search path. Packages are immutable for the server's life,
 * so a cache hit needs no I/O. No path leaves its package: the URI parser refuses
 * "..", absolute paths, backslashes and NUL, and every open goes through
 * the platform's *_open_beneath so a link cannot lead out of the root.
 * Mounts are append-only (a remount shadows the old one) so a reader never sees one
 * freed; they are freed at destroy. Leaf lock: p->lock never calls out. */
#include "../platform/fs.h"

#include <errno.h>
#include <string.h>

typedef struct mount {
    asset__map_node_t name_node; /* in p->names while it is the newest of its name */
    struct mount *next, *prev;   /* newest first; prev: a remount unlinks in O(1) */
    unsigned users;              /* [p->lock] reads and listings using it (find) */
    bool hidden;                 /* [p->lock] a newer mount took its name: freed unused */
    char *name;
    /* directory packages, else NULL: the directory, and while watching the one its path
     * names now (dir_take) [p->lock] */
    struct asset__root *root;
    const asset_embedded_file_t *files;
    size_t count;
    asset__map_t index; /* embedded: path -> node */
    struct emb_node *nodes;
    char *path;        /* directory packages: where they are, for watching (hot reload) */
    asset__map_t dirs; /* embedded: every directory some file is under -> its emb_dir */
    struct emb_dir *dir_list;
    bool sorted; /* embedded: paths in strictly increasing strcmp order (asset-embed's) */
} mount_t;

typedef struct emb_node {
    asset__map_node_t node;
    size_t i;
} emb_node_t;

typedef struct emb_dir { /* one block: the node, then its key */
    asset__map_node_t node;
    struct emb_dir *next;
} emb_dir_t;

struct asset__pkg {
    uv_mutex_t lock;
    mount_t *mounts;    /* every mount in use: the newest of each name, and older ones
                         * still read from */
    asset__map_t names; /* [lock] name -> its newest mount: a lookup walked them all */
    char **search;      /* from pkg_path */
    size_t nsearch;
    /* [lock] a lookup found no mount of its name since the last explicit mount: its
     * read, which fails, may still be in flight when a mount of the name comes */
    bool missed;
    /* [lock] mounts that took `missed` (or came while one had) and have not looked at
     * the loads in flight yet (asset__pkg_walked): a mount meanwhile looks too, else a
     * load after it joined the read that missed its package (a review) */
    unsigned walking;
    unsigned looking; /* [lock] finds looking on pkg_path: a mount meanwhile looks too */
};

/* A package name's longest (find looks names up in a buffer of this size + 1). */
#define PKG_NAME_MAX 255

static bool valid_name(const char *n) {
    if (!*n || !strcmp(n, ".") || !strcmp(n, "..") || strlen(n) > PKG_NAME_MAX) return false;
    for (; *n; n++)
        if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') || (*n >= '0' && *n <= '9') ||
              *n == '_' || *n == '-' || *n == '.'))
            return false;
    return true;
}

/* dir (n bytes of pkg_path) as the lookups open it: a relative one joined to base_dir,
 * the working directory at create, as bare paths are (it was opened against the
 * working directory of each lookup: after a chdir, its packages were not found). */
static char *search_dir(const char *dir, size_t n, const char *base_dir) {
    char *d = asset__strndup(dir, n);
    bool oom = false;
    char *full = d ? asset__path_drive_full(d, &oom) : NULL; /* Windows: "C:x" */
    if (full || oom) {
        asset_free(d);
        return full;
    }
    if (!d || !base_dir) return d;
    char *form = asset__strdup(d); /* in the library's form ('/'; Windows "C:/x") */
    asset_status_t pst;
    if (!form) {
        asset_free(d);
        return NULL;
    }
    bool relative =
        !asset__path_prepare(form, false, &pst) && !asset__path_root_len(form) && form[0] != '/';
    char *abs = relative ? asset__asprintf("%s/%s", base_dir, form) : NULL;
    asset_free(form);
    if (!relative) return d;
    asset_free(d);
    return abs;
}

asset__pkg_t *asset__pkg_create(const char *search_path, const char *base_dir) {
    asset__pkg_t *p = asset__calloc(1, sizeof *p);
    if (!p) return NULL;
    uv_mutex_init(&p->lock);
    asset__map_init(&p->names);
    for (const char *s = search_path; s && *s;) {
        char sep[2] = {asset__path_list_sep, 0}; /* ':' POSIX, ';' Windows */
        size_t n = strcspn(s, sep);
        if (n) {
            char **ns = asset_realloc(p->search, (p->nsearch + 1) * sizeof *ns);
            char *d = ns ? search_dir(s, n, base_dir) : NULL;
            if (ns) p->search = ns;
            if (!d) {
                asset__pkg_destroy(p);
                return NULL;
            }
            p->search[p->nsearch++] = d;
        }
        s += n;
        if (*s == asset__path_list_sep) s++;
    }
    return p;
}

static void mount_free(mount_t *m) {
    if (m->root) { /* no read uses it: the mount's is its only use */
        asset__dir_close(m->root->dir);
        asset_free(m->root);
    }
    asset__map_free(&m->index);
    asset__map_free(&m->dirs);
    for (emb_dir_t *d = m->dir_list, *next; d; d = next) {
        next = d->next;
        asset_free(d);
    }
    asset_free(m->nodes);
    asset_free(m->name);
    asset_free(m->path);
    asset_free(m);
}

void asset__pkg_destroy(asset__pkg_t *p) {
    if (!p) return;
    while (p->mounts) {
        mount_t *m = p->mounts;
        p->mounts = m->next;
        mount_free(m);
    }
    asset__map_free(&p->names);
    for (size_t i = 0; i < p->nsearch; i++) asset_free(p->search[i]);
    asset_free(p->search);
    uv_mutex_destroy(&p->lock);
    asset_free(p);
}

static mount_t *mount_new(const char *name) {
    mount_t *m = asset__calloc(1, sizeof *m);
    if (!m) return NULL;
    asset__map_init(&m->index);
    asset__map_init(&m->dirs);
    if (!(m->name = asset__strdup(name))) {
        asset_free(m);
        return NULL;
    }
    m->name_node.key = m->name;
    return m;
}

/* d becomes m's directory; false: out of memory (d closed). */
static bool mount_set_dir(mount_t *m, asset__dir_t *d) {
    if (!(m->root = asset_alloc(sizeof *m->root))) {
        asset__dir_close(d);
        return false;
    }
    m->root->dir = d;
    m->root->users = 1; /* the mount's */
    return true;
}

/* [p->lock] The newest mount named `name`, or NULL. */
static mount_t *mount_named(const asset__pkg_t *p, const char *name) {
    return (mount_t *)asset__map_get(&p->names, name);
}

/* [p->lock] Takes m out of the list and frees it. Linked both ways: walking the list
 * to m made remounting each of n packages cost n each (40,000: 21 s under the lock). */
static void mount_unlink(asset__pkg_t *p, mount_t *m) {
    atomic_fetch_add_explicit(&asset__pkg_unlink_visits, 1, memory_order_relaxed);
    if (m->prev)
        m->prev->next = m->next;
    else
        p->mounts = m->next;
    if (m->next) m->next->prev = m->prev;
    mount_free(m);
}

/* [p->lock] m becomes the newest mount of its name; the one before it is freed once no
 * read uses it (a remount kept its directory open until destroy: an editor remounting
 * ran out of descriptors). False: out of memory (nothing changed). */
/* *hid: whether m hides a mount of its name (loads in flight may have read that one). */
static bool push_mount(asset__pkg_t *p, mount_t *m, bool *hid) {
    mount_t *old = mount_named(p, m->name);
    *hid = old != NULL;
    if (old) asset__map_remove(&p->names, &old->name_node);
    if (!asset__map_put(&p->names, &m->name_node)) {
        if (old) asset__map_put(&p->names, &old->name_node); /* its room is still there */
        return false;
    }
    m->next = p->mounts;
    m->prev = NULL;
    if (m->next) m->next->prev = m;
    p->mounts = m;
    if (old) {
        old->hidden = true;
        if (!old->users) mount_unlink(p, old);
    }
    return true;
}

/* *walk: ASSET__PKG_HID (m hides a mount of its name), ASSET__PKG_MISSED (a lookup of
 * some name found none since the last mount: the walk marks every pkg:// load, since it
 * takes the flag for all names), or 0. */
static bool add_mount(asset__pkg_t *p, mount_t *m, int *walk) {
    uv_mutex_lock(&p->lock);
    bool hid = false;
    bool ok = push_mount(p, m, &hid);
    *walk = !ok                                     ? 0
            : p->missed || p->walking || p->looking ? ASSET__PKG_MISSED
            : hid                                   ? ASSET__PKG_HID
                                                    : 0;
    if (*walk == ASSET__PKG_MISSED) p->walking++;
    if (ok) p->missed = false;
    uv_mutex_unlock(&p->lock);
    return ok;
}

void asset__pkg_walked(asset__pkg_t *p) {
    uv_mutex_lock(&p->lock);
    p->walking--;
    uv_mutex_unlock(&p->lock);
}

/* A read or listing is done with m (find gave it). */
static void mount_release(asset__pkg_t *p, mount_t *m) {
    uv_mutex_lock(&p->lock);
    if (--m->users == 0 && m->hidden) mount_unlink(p, m);
    uv_mutex_unlock(&p->lock);
}

/* dir as the mount opens it, for hot reload's watches (by path, on the I/O thread): a
 * relative one joined to the working directory of this moment. It was kept relative,
 * so after the host changed directory a file loaded from it was watched under the new
 * one, and its edits were never seen. The working directory unknown (removed): dir
 * as given. NULL: out of memory. */
static char *mount_path(const char *dir) {
    bool oom = false;
    /* Windows: "C:" or "C:x" is read against drive C's working directory, which the
     * watch (the path up to its last '/': "C:/x") did not take: another directory */
    char *full = asset__path_drive_full(dir, &oom);
    if (full || oom) return full;
    char *form = asset__strdup(dir); /* in the library's form ('/'; Windows "C:/x") */
    if (!form) return NULL;
    asset_status_t pst;
    if (asset__path_prepare(form, false, &pst) || asset__path_root_len(form) || form[0] == '/') {
        asset_free(form);
        return asset__strdup(dir);
    }
    char *cwd = asset__getcwd_dup(&oom);
    if (!cwd && !oom) { /* unknown */
        asset_free(form);
        return asset__strdup(dir);
    }
    size_t cl = cwd ? strlen(cwd) : 0; /* "/" (or "C:/") ends in its separator */
    char *abs =
        cwd ? asset__asprintf("%s%s%s", cwd, cl && cwd[cl - 1] == '/' ? "" : "/", form) : NULL;
    asset_free(cwd);
    asset_free(form);
    return abs;
}

int asset__pkg_mount(asset__pkg_t *p, const char *name, const char *dir, int *hid) {
    if (!valid_name(name)) return ASSET_E_INVALID;
    asset__dir_t *d = NULL;
    int err = asset__dir_open(dir, &d);
    if (err) /* out of descriptors is not "not found" */
        return err == -ENOMEM                      ? ASSET_E_NO_MEMORY
               : err == -ENOENT || err == -ENOTDIR ? ASSET_E_NOT_FOUND
               : err == -EACCES || err == -EPERM   ? ASSET_E_FORBIDDEN
                                                   : ASSET_E_IO;
    mount_t *m = mount_new(name);
    bool named = m && (m->path = mount_path(dir)) != NULL;
    if (!named || !mount_set_dir(m, d)) { /* which closed d */
        if (!named) asset__dir_close(d);
        if (m) mount_free(m);
        return ASSET_E_NO_MEMORY;
    }
    if (!add_mount(p, m, hid)) {
        mount_free(m);
        return ASSET_E_NO_MEMORY;
    }
    return ASSET_OK;
}

/* Whether path is a package path in normal form, as lookups give them: relative,
 * '/'-separated, no empty, "." or ".." segment, no backslash (the URI parser refuses
 * one: "a\\b.png", a Windows path, was mounted and listed, and never loaded). Any other
 * would never be found (or be found as another entry, "a/../b" as "b"). */
static bool normal_path(const char *path) {
    if (!*path || strchr(path, '\\')) return false;
    for (const char *seg = path;;) {
        size_t n = strcspn(seg, "/");
        if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        if (!seg[n]) return true;
        seg += n + 1;
    }
}

/* Files every directory path is under ("a" and "a/b" of "a/b/c.png") in m->dirs, so
 * that a miss tells a directory in one look (embedded_dir). False: out of memory. */
static bool index_dirs(mount_t *m, const char *path) {
    for (const char *q = strchr(path, '/'); q; q = strchr(q + 1, '/')) {
        size_t n = (size_t)(q - path);
        if (asset__map_find_n(&m->dirs, path, n)) continue;
        emb_dir_t *d = asset_alloc(sizeof *d + n + 1);
        if (!d) return false;
        char *key = (char *)(d + 1);
        memcpy(key, path, n);
        key[n] = 0;
        d->node.key = key;
        if (!asset__map_put(&m->dirs, &d->node)) {
            asset_free(d);
            return false;
        }
        d->next = m->dir_list;
        m->dir_list = d;
    }
    return true;
}

/* Why entry f of a table mounted as package `name` could never be loaded, or NULL. */
static const char *entry_refused(const char *name, const asset_embedded_file_t *f) {
    if (!f->path) return "no path";
    if (!normal_path(f->path)) return "not a relative '/'-separated path in normal form";
    if (!f->data && f->size) return "no data for its size";
    /* "pkg://name/" and the path, '%' and '#' encoded: no longer URI is taken (one was
     * mounted and listed, and its every load failed "URI too long") */
    if (!asset__uri_path_fits(sizeof "pkg://" - 1 + strlen(name) + 1, f->path))
        return "its pkg:// URI would pass 8192 bytes";
    return NULL;
}

int asset__pkg_mount_embedded(asset__pkg_t *p, const char *name, const asset_embedded_file_t *files,
                              size_t count, int *hid, size_t *bad, const char **why) {
    *why = NULL;
    if (!valid_name(name)) return ASSET_E_INVALID;
    mount_t *m = mount_new(name);
    if (!m) return ASSET_E_NO_MEMORY;
    m->files = files;
    m->count = count;
    m->nodes = count ? asset__calloc(count, sizeof *m->nodes) : NULL;
    if (count && !m->nodes) goto oom;
    for (size_t i = 0; i < count; i++) {
        const char *no = entry_refused(name, &files[i]);
        /* a path given twice: only one entry could be served, and listed twice */
        if (!no && asset__map_get(&m->index, files[i].path)) no = "another entry has its path";
        if (no) {
            *bad = i;
            *why = no;
            mount_free(m);
            return ASSET_E_INVALID;
        }
        m->nodes[i].node.key = files[i].path;
        m->nodes[i].i = i;
        if (!asset__map_put(&m->index, &m->nodes[i].node) || !index_dirs(m, files[i].path))
            goto oom;
    }
    /* a path that is a file and a directory too ("a" and "a/b"): "a" loaded the file and
     * its folder was the file's children, where no disk can hold both */
    for (size_t i = 0; i < count; i++)
        if (asset__map_get(&m->dirs, files[i].path)) {
            *bad = i;
            *why = "a directory of another entry's path too";
            mount_free(m);
            return ASSET_E_INVALID;
        }
    m->sorted = true;
    for (size_t i = 1; i < count && m->sorted; i++)
        m->sorted = strcmp(files[i - 1].path, files[i].path) < 0;
    if (!add_mount(p, m, hid)) goto oom;
    return ASSET_OK;
oom:
    mount_free(m);
    return ASSET_E_NO_MEMORY;
}

/* Finds the package `name` (len n): mounts first, then the search path, whose hit is
 * remembered as a mount. NULL with *err 0: no such package; else *err says why it
 * could not be looked for (ENOMEM, EMFILE...) or opened (EACCES: the first pkg_path
 * directory that has it, *where, NULL when none), so that is not reported as "not
 * mounted". */
void (*asset__pkg_found_hook)(const char *name) = NULL;
atomic_uint_fast64_t asset__pkg_list_visits;
atomic_uint_fast64_t asset__pkg_unlink_visits;

static mount_t *search(asset__pkg_t *p, const char *buf, int *err, const char **where);

static mount_t *find(asset__pkg_t *p, const char *name, size_t n, int *err, const char **where) {
    char buf[PKG_NAME_MAX + 1];
    *err = 0;
    *where = NULL;
    if (n >= sizeof buf) return NULL;
    memcpy(buf, name, n);
    buf[n] = 0;
    /* no directory has a refused name */
    bool searched = p->nsearch && !asset__path_component_refused(buf, n);
    uv_mutex_lock(&p->lock);
    mount_t *m = mount_named(p, buf);
    if (m)
        m->users++; /* mount_release */
    else if (searched)
        p->looking++; /* a mount meanwhile looks at the loads in flight */
    else
        p->missed = true; /* a mount of it now: this read is stale (asset_server_mount) */
    uv_mutex_unlock(&p->lock);
    if (m || !searched) return m;
    /* found on pkg_path, the package was not "not mounted": no mark (every mount after
     * a package's first use looked at every load in flight: a review) */
    m = search(p, buf, err, where);
    uv_mutex_lock(&p->lock);
    p->looking--;
    if (!m) p->missed = true;
    uv_mutex_unlock(&p->lock);
    return m;
}

/* find's look on pkg_path for the package buf. */
static mount_t *search(asset__pkg_t *p, const char *buf, int *err, const char **where) {
    mount_t *m;
    for (size_t i = 0; i < p->nsearch; i++) {
        /* opened by its path, links followed, as asset_server_mount() opens a directory:
         * the name is one component (valid_pkg_name in the URI parser), and a package
         * that is a symlink to its directory elsewhere (packs/dlc -> /opt/dlc) was "not
         * mounted" when it was opened beneath the search directory. Its own paths are
         * confined beneath it, as for any mount. */
        char *path = asset__asprintf("%s/%s", p->search[i], buf);
        if (!path) {
            *err = ENOMEM;
            *where = NULL;
            return NULL;
        }
        asset__dir_t *d = NULL;
        int e = asset__dir_open(path, &d);
        if (e) {
            asset_free(path);
            /* as execvp() walks PATH: not here, or no permission to look (remembered,
             * reported unless a later directory has it: a search directory the user
             * cannot enter hides no package of the others); any other failure (out of
             * descriptors, a loop of links) is the package's, unreadable. Both were
             * "not mounted", and the latter served a later directory's package */
            if (e == -ENOENT || e == -ENOTDIR) continue;
            bool denied = e == -EACCES || e == -EPERM;
            if (denied && *where) continue; /* the first refusal is the one told */
            *err = -e;
            *where = p->search[i];
            if (!denied) return NULL;
            continue;
        }
        *err = 0; /* found: a directory that refused us before it is no matter */
        *where = NULL;
        m = mount_new(buf);
        if (!m) {
            asset_free(path);
            asset__dir_close(d);
            *err = ENOMEM;
            return NULL;
        }
        m->path = path;
        if (!mount_set_dir(m, d)) {
            mount_free(m);
            *err = ENOMEM;
            return NULL;
        }
        if (asset__pkg_found_hook) asset__pkg_found_hook(buf);
        /* a mount of the name made since the scan above wins (mounts come before
         * pkg_path), and so does another lookup's hit: the name is looked up again */
        uv_mutex_lock(&p->lock);
        mount_t *had = mount_named(p, buf);
        bool hid_none;
        bool pushed = !had && push_mount(p, m, &hid_none);
        mount_t *use = had ? had : pushed ? m : NULL;
        if (use) use->users++; /* mount_release */
        uv_mutex_unlock(&p->lock);
        if (!pushed) mount_free(m);
        if (!use) *err = ENOMEM;
        return use;
    }
    return NULL;
}

static asset_status_t read_in(asset_server_t *s, mount_t *m, asset_request_t *r, const char *rel);

/* A directory package's directory, for one read or listing (dir_put when done). While
 * watching, the one its path names now, opened again when another is there (dir_root.c):
 * a package's folder replaced by an exporter (renamed away, made anew) was read where
 * the mount had opened it, so the watch's revalidations and every later edit's reload
 * read the old files (thirty-fourth review). Not watching, packages are immutable: the
 * one mounted, with no look at the path (a stat a read). */
static int dir_take(asset_server_t *s, mount_t *m, struct asset__root **out) {
    if (s->cfg.watch) return asset__root_take(&s->pkg->lock, &m->root, m->path, true, out);
    *out = m->root; /* kept by the mount, which the read's use keeps */
    return 0;
}

static void dir_put(asset_server_t *s, struct asset__root *rt) {
    if (s->cfg.watch) asset__root_put(&s->pkg->lock, rt);
}

/* Records find's failure err (an errno) on the read r, or else the listing l, and returns
 * its status. <what> names the pkg_path directory that has the package named (nl bytes
 * of name) and could not open it, else (or out of memory) "looking for the package". */
static asset_status_t find_failed(asset_request_t *r, asset_list_t *l, int err, const char *where,
                                  const char *name, size_t nl) {
    char *what = where ? asset__asprintf("opening package '%.*s' at %s/%.*s", (int)nl, name, where,
                                         (int)nl, name)
                       : NULL;
    const char *w = what ? what : "looking for the package";
    asset_status_t st =
        r ? asset__errno_status(r, err, false, w) : asset__list_errno(l, err, false, w);
    asset_free(what);
    return st;
}

static asset_status_t pkg_read(void *ctx, asset_request_t *r) {
    asset_server_t *s = ctx;
    asset__pkg_t *p = s->pkg;
    const char *path = asset_request_path(r);
    size_t nl = strcspn(path, "/");
    int err;
    const char *where;
    mount_t *m = find(p, path, nl, &err, &where);
    if (!m && err) return find_failed(r, NULL, err, where, path, nl);
    if (!m)
        return asset_request_fail(r, ASSET_E_NOT_FOUND, "package '%.*s' is not mounted", (int)nl,
                                  path);
    asset_status_t st = read_in(s, m, r, path[nl] ? path + nl + 1 : "");
    mount_release(p, m);
    return st;
}

/* Whether rel is a directory of embedded mount m: its root, or a path some file is
 * under (a table has directories only through its files). Only a miss asks; one look
 * (it walked the table: a game probing for optional files paid O(files) a probe). */
static bool embedded_dir(const mount_t *m, const char *rel) {
    return !*rel || asset__map_get(&m->dirs, rel);
}

/* pkg_read's part with its mount in hand (kept alive by its use count). */
static asset_status_t read_in(asset_server_t *s, mount_t *m, asset_request_t *r, const char *rel) {
    asset_request_set_version(r, asset__version_immutable);
    if (!m->root) {
        emb_node_t *e = (emb_node_t *)asset__map_get(&m->index, rel);
        if (!e && embedded_dir(m, rel)) /* as a directory package says (it was NOT_FOUND) */
            return asset_request_fail(r, ASSET_E_IO, "is a directory, not a file");
        if (!e) return asset_request_fail(r, ASSET_E_NOT_FOUND, "not in the embedded package");
        const asset_embedded_file_t *f = &m->files[e->i];
        asset_request_set_total(r, f->size);
        /* at the threshold and above, lent in place (data[size] == 0: asset-embed's
         * extra byte, see map_threshold); below it copied once, as always */
        if (f->size && s->cfg.map_threshold != SIZE_MAX && f->size >= s->cfg.map_threshold)
            return asset__request_lend(r, (void *)f->data, f->size, NULL, NULL);
        return asset_request_adopt(r, (void *)f->data, f->size, NULL, NULL);
    }
    if (!*rel) return asset_request_fail(r, ASSET_E_IO, "is a directory, not a file");
    /* names this OS cannot open safely (Windows: device names, streams): directory
     * packages only, before anything is opened; an embedded table opens nothing, and
     * its "aux.json" loads on every OS */
    const char *why = asset__path_components_refused(rel);
    if (why) return asset_request_fail(r, ASSET_E_FORBIDDEN, "forbidden path: %s", why);
    asset__file_t *f = NULL;
    struct asset__root *rt = NULL;
    int e = dir_take(s, m, &rt);
    if (!e) {
        e = asset__file_open_beneath(rt->dir, rel, &f);
        dir_put(s, rt); /* the file, open, needs it no more */
    }
    if (e) return asset__errno_status(r, -e, true, "open");
    /* watched, a directory package is mutable: versioned like file://, and never mapped
     * (a file truncated in place under a mapping raises SIGBUS: see map_file); a load
     * pinned to a digest neither (asset__fs_read_file). An embedded table, above, is
     * the program's own constant memory: lent, pinned or not */
    return asset__fs_read_file(r, f, s->cfg.watch, s->cfg.watch ? SIZE_MAX : s->cfg.map_threshold);
}

char *asset__pkg_real_path(asset__pkg_t *p, const char *path, bool *nomem) {
    size_t nl = strcspn(path, "/");
    *nomem = false;
    if (!path[nl]) return NULL;
    char *res = NULL;
    uv_mutex_lock(&p->lock);
    mount_t *m = (mount_t *)asset__map_find_n(&p->names, path, nl);
    if (m && m->path) *nomem = !(res = asset__asprintf("%s/%s", m->path, path + nl + 1));
    uv_mutex_unlock(&p->lock);
    return res;
}

static asset_status_t list_in(asset_server_t *s, mount_t *m, asset_list_t *l, const char *rel);

static asset_status_t pkg_list(void *ctx, const char *uri, asset_list_t *l) {
    (void)uri;
    asset_server_t *s = ctx;
    asset__pkg_t *p = s->pkg;
    const char *path = l->path;
    size_t nl = strcspn(path, "/");
    int err;
    const char *where;
    mount_t *m = find(p, path, nl, &err, &where);
    if (!m && err) return find_failed(NULL, l, err, where, path, nl);
    if (!m)
        return asset_list_fail(l, ASSET_E_NOT_FOUND, "package '%.*s' is not mounted", (int)nl,
                               path);
    asset_status_t st = list_in(s, m, l, path[nl] ? path + nl + 1 : "");
    mount_release(p, m);
    return st;
}

/* path against the prefix rel + "/" (rl bytes of rel): <0, 0 (path starts with it), >0. */
static int cmp_prefix(const char *path, const char *rel, size_t rl) {
    int c = strncmp(path, rel, rl);
    return c ? c : (int)(unsigned char)path[rl] - '/';
}

/* [m->sorted] The first entry from lo whose path does not start with the pl bytes at
 * pre (all from lo on that do are one run: the table is sorted). *visits counts. */
static size_t run_end(const mount_t *m, size_t lo, const char *pre, size_t pl, uint64_t *visits) {
    size_t hi = m->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        ++*visits;
        if (!strncmp(m->files[mid].path, pre, pl))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* pkg_list's part with its mount in hand (kept alive by its use count). */
static asset_status_t list_in(asset_server_t *s, mount_t *m, asset_list_t *l, const char *rel) {
    if (m->root) {
        const char *why = asset__path_components_refused(rel);
        if (why) return asset_list_fail(l, ASSET_E_FORBIDDEN, "forbidden path: %s", why);
        asset__dir_t *d = NULL;
        struct asset__root *rt = NULL;
        int e = dir_take(s, m, &rt);
        if (!e) {
            e = asset__dir_open_beneath(rt->dir, rel, &d);
            dir_put(s, rt);
        }
        if (e) return asset__list_errno(l, -e, true, "opendir");
        return asset__fs_list_dir(l, d);
    }
    size_t rl = strlen(rel);
    bool any = false; /* a directory exists in a table only through its files */
    uint64_t visits = 0;
    asset_status_t st = ASSET_OK;
    size_t i = 0;
    if (m->sorted && rl) { /* the directory's files are one run: where it starts */
        for (size_t hi = m->count; i < hi; visits++) {
            size_t mid = i + (hi - i) / 2;
            if (cmp_prefix(m->files[mid].path, rel, rl) < 0)
                i = mid + 1;
            else
                hi = mid;
        }
    }
    /* a walk of the whole table made each listing cost the table (a table's every
     * directory listed: its size times the directories); sorted, the run alone, and
     * without recursion each subdirectory's run is jumped over */
    while (i < m->count && st == ASSET_OK) {
        const char *f = m->files[i].path;
        visits++;
        if (rl && cmp_prefix(f, rel, rl) != 0) {
            if (m->sorted) break; /* past the run */
            i++;
            continue;
        }
        any = true;
        const char *sub = rl ? f + rl + 1 : f, *slash = strchr(sub, '/');
        if (!l->recursive && slash) {
            size_t pl = (size_t)(slash - f) + 1; /* "rel/sub/" */
            i = m->sorted ? run_end(m, i + 1, f, pl, &visits) : i + 1;
            continue;
        }
        st = asset_list_add(l, sub, (int64_t)m->files[i].size);
        i++;
    }
    atomic_fetch_add_explicit(&asset__pkg_list_visits, visits, memory_order_relaxed);
    if (st != ASSET_OK) return asset_list_fail(l, st, "out of memory listing");
    if (rl && !any)
        return asset_list_fail(l, ASSET_E_NOT_FOUND, "no directory '%s' in the embedded package",
                               rel);
    return ASSET_OK;
}

const asset_source_t asset__pkg_source = {
    ASSET_SOURCE_ABI, "pkg", ASSET_SOURCE_IMMUTABLE, pkg_read, pkg_list, NULL,
};

/* trace.c - the trace hook (each load's phases with timestamps) and the trace
 * recorder that writes Chrome trace JSON (chrome://tracing, ui.perfetto.dev).
 *
 * The hook is read lock-free on every phase: s->tracer points to an immutable
 * {fn, user} record; NULL costs that one load. A thread about to call the hook joins
 * the current one of two slots (trace_epoch's parity): it counts itself in the slot's
 * busy, checks that the epoch did not move meanwhile (else it leaves and tries again),
 * and calls the slot's hook. asset_server_set_trace puts the new hook in the other
 * slot, moves the epoch there, and waits for the old slot's busy to reach 0: only the
 * calls that may hold the old hook, which are finitely many (a call that starts after
 * the move is counted in the new slot), so under tracing from several threads, whose
 * calls overlap, it still returns (it waited for every call of any hook: twelfth review).
 * Once it returns the old hook is never called again (its user, a recorder, may be
 * destroyed). Setters take turns (trace_setting). Every operation is sequentially
 * consistent: the store-then-load on each side must not be reordered. */
#include "internal.h"
#include "platform/platform.h" /* asset__fopen, asset__rename_over, asset__file_sync... */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct asset__tracer {
    asset_trace_fn fn;
    void *user;
};

static void trace_yield(void) { uv_sleep(0); } /* libuv has no yield: sleep(0) */

static atomic_uint g_thread_seq;
static atomic_uint_fast64_t g_trace_seq; /* job trace ids */
static _Thread_local uint32_t t_thread_id;

static uint32_t thread_id(void) {
    if (!t_thread_id) t_thread_id = atomic_fetch_add(&g_thread_seq, 1) + 1;
    return t_thread_id;
}

bool asset__trace_set(asset_server_t *s, asset_trace_fn fn, void *user) {
    asset__tracer_t *t = NULL;
    if (fn) {
        t = asset__calloc(1, sizeof *t);
        if (!t) return false;
        t->fn = fn;
        t->user = user;
    }
    while (atomic_exchange(&s->trace_setting, true)) trace_yield(); /* one setter at a time */
    unsigned e = atomic_load(&s->trace_epoch);
    struct asset__trace_slot *cur = &s->trace_slot[e & 1], *next = &s->trace_slot[~e & 1];
    atomic_store(&next->hook, t); /* next: idle since the last setter waited for it */
    atomic_store(&s->trace_epoch, e + 1);
    atomic_store(&s->tracer, t); /* after the move: a call it lets through sees t */
    /* the calls that joined the old slot finish theirs (a hook is quick and never calls
     * the server, so this ends); no lock held: a hook may run under the server's lock */
    while (atomic_load(&cur->busy) != 0) trace_yield();
    asset__tracer_t *old = atomic_exchange(&cur->hook, NULL);
    atomic_store(&s->trace_setting, false);
    asset_free(old);
    return true;
}

void asset_server_set_trace(asset_server_t *s, asset_trace_fn fn, void *user) {
    if (s && !asset__trace_set(s, fn, user))
        asset__log(s, ASSET_LOG_ERROR, "asset_server_set_trace: out of memory; hook unchanged");
}

void asset__trace_free(asset_server_t *s) {
    atomic_store(&s->tracer, NULL);
    for (int i = 0; i < 2; i++) asset_free(atomic_exchange(&s->trace_slot[i].hook, NULL));
}

/* Calls the hook, if there still is one; see the top of the file. */
static void emit(asset_server_t *s, int phase, uint64_t id, const char *uri, const char *loader,
                 asset_status_t st) {
    struct asset__trace_slot *slot;
    for (;;) {
        unsigned e = atomic_load(&s->trace_epoch);
        slot = &s->trace_slot[e & 1];
        atomic_fetch_add(&slot->busy, 1);
        if (atomic_load(&s->trace_epoch) == e) break; /* a setter waits for this call */
        atomic_fetch_sub(&slot->busy, 1);             /* moved meanwhile: the new slot */
    }
    asset__tracer_t *t = atomic_load(&slot->hook);
    if (!t) {
        atomic_fetch_sub(&slot->busy, 1);
        return;
    }
    asset_trace_event_t e = {
        .phase = (asset_trace_phase_t)phase,
        .time_ns = asset__now_ns(),
        .id = id,
        .uri = uri ? uri : "",
        .loader = loader ? loader : "",
        .status = st,
        .thread = thread_id(),
    };
    t->fn(&e, t->user);
    atomic_fetch_sub(&slot->busy, 1);
}

void asset__trace_job_new(asset_server_t *s, asset__job_t *j) {
    /* unique in the process, not per server: one recorder may hear several servers */
    j->trace_id = atomic_fetch_add_explicit(&g_trace_seq, 1, memory_order_relaxed) + 1;
    j->queued_ns = asset__now_ns();
    asset__trace_job(s, j, ASSET__TR_QUEUED, ASSET_OK);
}

void asset__trace_job(asset_server_t *s, const asset__job_t *j, int phase, asset_status_t st) {
    if (!atomic_load_explicit(&s->tracer, memory_order_relaxed)) return; /* the cheap path */
    emit(s, phase, j->trace_id, j->uri, j->loader ? j->loader->name : "", st);
}

void asset__trace_delivered(asset_server_t *s, const asset_handle_t *h) {
    if (!atomic_load_explicit(&s->tracer, memory_order_relaxed)) return;
    const char *loader = h->value && h->value->loader ? h->value->loader->name
                         : h->loader                  ? h->loader->name
                                                      : "";
    emit(s, ASSET__TR_DELIVERED, h->trace_id, asset__handle_uri(h), loader, h->status);
}

/* ---- the recorder ---- */

typedef struct rec {
    asset_trace_event_t e; /* uri and loader point into strings below */
    char *uri, *loader;
} rec_t;

struct asset_trace {
    uv_mutex_t lock;
    rec_t *v;
    size_t n, cap;
    size_t dropped; /* events lost to out of memory */
};

asset_trace_t *asset_trace_create(void) {
    asset_trace_t *tr = asset__calloc(1, sizeof *tr);
    if (!tr) return NULL;
    if (uv_mutex_init(&tr->lock) != 0) {
        asset_free(tr);
        return NULL;
    }
    return tr;
}

void asset_trace_destroy(asset_trace_t *tr) {
    if (!tr) return;
    for (size_t i = 0; i < tr->n; i++) {
        asset_free(tr->v[i].uri);
        asset_free(tr->v[i].loader);
    }
    asset_free(tr->v);
    uv_mutex_destroy(&tr->lock);
    asset_free(tr);
}

void asset_trace_record(const asset_trace_event_t *e, void *trace) {
    asset_trace_t *tr = trace;
    if (!tr || !e) return;
    char *uri = asset__strdup(e->uri ? e->uri : "");
    char *loader = asset__strdup(e->loader ? e->loader : "");
    uv_mutex_lock(&tr->lock);
    if (uri && loader && tr->n == tr->cap) {
        size_t cap = tr->cap ? tr->cap * 2 : 256;
        rec_t *nv = asset_realloc(tr->v, cap * sizeof *nv);
        if (nv) {
            tr->v = nv;
            tr->cap = cap;
        }
    }
    if (!uri || !loader || tr->n == tr->cap) {
        tr->dropped++;
        uv_mutex_unlock(&tr->lock);
        asset_free(uri);
        asset_free(loader);
        return;
    }
    rec_t *r = &tr->v[tr->n++];
    r->e = *e;
    r->uri = uri;
    r->loader = loader;
    r->e.uri = uri;
    r->e.loader = loader;
    uv_mutex_unlock(&tr->lock);
}

size_t asset_trace_count(const asset_trace_t *ctr) {
    if (!ctr) return 0;
    asset_trace_t *tr = (asset_trace_t *)ctr;
    uv_mutex_lock(&tr->lock);
    size_t n = tr->n;
    uv_mutex_unlock(&tr->lock);
    return n;
}

bool asset_trace_event(const asset_trace_t *ctr, size_t i, asset_trace_event_t *out) {
    if (!ctr || !out) return false;
    asset_trace_t *tr = (asset_trace_t *)ctr;
    uv_mutex_lock(&tr->lock);
    bool ok = i < tr->n;
    if (ok) *out = tr->v[i].e;
    uv_mutex_unlock(&tr->lock);
    return ok;
}

/* A JSON string: UTF-8 as it is; a byte that is no part of well-formed UTF-8 (URIs
 * may hold any byte) is written as the code point of its value, \u00XX, so the file
 * stays UTF-8 (RFC 8259) and the byte can still be read off it. */
static void put_json_string2(FILE *f, const char *prefix, const char *s) {
    fputc('"', f);
    fputs(prefix, f);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = asset__utf8_len(p, SIZE_MAX, NULL);
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || !n)
            fprintf(f, "\\u%04x", *p);
        else
            fwrite(p, 1, n, f);
        p += n ? n : 1;
    }
    fputc('"', f);
}

static void put_json_string(FILE *f, const char *s) { put_json_string2(f, "", s); }

/* Sorted by (id, position): an id's events are a run, in the order they were recorded. */
typedef struct key {
    uint64_t id;
    size_t i;
} key_t_;
static int by_id(const void *a, const void *b) {
    const key_t_ *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Where a load's track closes: after the last event of its id, at the latest time of
 * them (a job whose handles were all cancelled while it read or parsed reports the
 * step's end after its DELIVERED: closed there, that slice ended outside its load);
 * not while a step it began has not ended (the trace written before that end).
 * Also, per event, what the recorder missed before it: a recorder set while the load
 * was in flight (or out of memory for an event) has no QUEUED for it, nor the START of a
 * step under way; the track opens at its first event, and an END whose START it lacks
 * is left out (written, it ended what was never begun: thirtieth review). */
typedef struct closing {
    uint64_t at;           /* time_ns */
    size_t begun;          /* the event it began with, QUEUED, whose URI names it (a
                              handle's DELIVERED names the handle: "uri#label"); without
                              a QUEUED, its first event */
    asset_status_t status; /* its last DELIVERED's */
    bool on;
    bool opens;    /* this event's load has no QUEUED: its track begins here */
    bool unopened; /* an END whose START was not recorded: not written */
} closing_t;

static const char *slice_name(const rec_t *r) {
    switch (r->e.phase) {
    case ASSET_TRACE_READ_START:
    case ASSET_TRACE_READ_END: return "read";
    case ASSET_TRACE_PARSE_START:
    case ASSET_TRACE_PARSE_END: return strcmp(r->loader, "task") ? "parse" : "run";
    case ASSET_TRACE_FINALIZE_START:
    case ASSET_TRACE_FINALIZE_END: return "finalize";
    default: return "?";
    }
}

/* One event of the file: a slice's begin or end, or an instant (ph "n" or "i"); name
 * NULL is the load's track ("load <uri>"). dt: ns since the trace's start. */
static void put_event(FILE *f, bool *first, const char *ph, uint32_t tid, uint64_t dt,
                      const char *name, const rec_t *r, asset_status_t status) {
    fputs(*first ? "" : ",\n", f);
    *first = false;
    /* microseconds with 3 decimals, written as integers: "%.3f" would follow the
     * host's LC_NUMERIC (a decimal comma is not JSON) */
    fprintf(f, "{\"ph\":\"%s\",\"cat\":\"asset\",\"pid\":1,\"tid\":%u,\"ts\":%llu.%03u,", ph, tid,
            (unsigned long long)(dt / 1000), (unsigned)(dt % 1000));
    if (ph[0] == 'i')
        fputs("\"s\":\"t\",", f);
    else
        fprintf(f, "\"id\":\"0x%llx\",", (unsigned long long)r->e.id);
    fputs("\"name\":", f);
    if (name)
        put_json_string(f, name);
    else
        put_json_string2(f, "load ", r->uri);
    fputs(",\"args\":{\"uri\":", f);
    put_json_string(f, r->uri);
    fputs(",\"loader\":", f);
    put_json_string(f, r->loader);
    fprintf(f, ",\"status\":\"%s\"}}", asset_err_name(status));
}

/* path's bytes replaced by tmp's, in place, for a rename over path the OS refused:
 * Windows refuses it while another program holds path open without FILE_SHARE_DELETE
 * (a trace viewer, an editor), where writing in place is allowed if it shares writing,
 * and POSIX refuses it in a sticky directory (/tmp) for a file of another user that
 * this one may write. Such a write returned ASSET_E_IO since the trace was renamed over
 * its path (twenty-second review); as before then, a failure midway leaves path cut
 * short. Synced before it is closed, as tmp was. 0, or -1 with errno set. */
static int copy_in_place(const char *tmp, const char *path) {
    FILE *in = asset__fopen(tmp, "rb");
    if (!in) return -1;
    /* path is there (its rename was refused): opened without O_CREAT, which in a sticky
     * directory with fs.protected_regular refused another user's file (EACCES), the
     * very case of a refused rename this copy is for (twenty-sixth review) */
    FILE *out = asset__fopen_existing(path);
    if (!out) {
        int err = errno;
        fclose(in);
        errno = err;
        return -1;
    }
    char buf[4096];
    bool bad = false;
    for (size_t n; !bad && (n = fread(buf, 1, sizeof buf, in)) > 0;)
        bad = fwrite(buf, 1, n, out) != n;
    bad = bad || ferror(in);
    /* on the disk as the rename's file is (asset__file_sync): else a power cut soon
     * after could leave path empty or cut short, where the rename leaves a whole trace
     * (twenty-fifth review) */
    bad = bad || asset__file_sync(out) != 0;
    int err = bad ? errno : 0;
    if (fclose(out) != 0 && !bad) {
        bad = true;
        err = errno;
    }
    fclose(in);
    if (bad) errno = err ? err : EIO;
    return bad ? -1 : 0;
}

asset_status_t asset_trace_write_chrome_json(const asset_trace_t *ctr, const char *path) {
    if (!ctr || !path) return ASSET_E_INVALID;
    asset_trace_t *tr = (asset_trace_t *)ctr;
    /* the events so far, copied under the lock and written without it: held for the
     * whole write, every event of every server thread (some with the server's lock held)
     * waited for the disk (a review). A record's strings stay until the recorder goes */
    uv_mutex_lock(&tr->lock);
    size_t n = tr->n, dropped = tr->dropped;
    rec_t *v = n ? asset_alloc(n * sizeof *v) : NULL;
    if (v) memcpy(v, tr->v, n * sizeof *v);
    uv_mutex_unlock(&tr->lock);
    /* for each event, whether its load closes after it (the last event of its id) */
    key_t_ *idx = n ? asset_alloc(n * sizeof *idx) : NULL;
    closing_t *last = n ? asset__calloc(n, sizeof *last) : NULL;
    if (n && (!v || !idx || !last)) {
        asset_free(v);
        asset_free(idx);
        asset_free(last);
        return ASSET_E_NO_MEMORY;
    }
    /* opened only once the write can go through: one out of memory left an empty file
     * where a good trace had been (a review). A plain file (or none) is written beside
     * path and renamed over it once whole: written in place, a write that failed midway
     * (a full disk, a file size limit) left the trace that was there cut short
     * (twenty-second review). Anything else (a symlink, a device such as /dev/stdout, a
     * FIFO), or a directory where no file can be made beside it, is written in place */
    char *tmp = NULL;
    int kind = asset__path_lkind(path);
    if (kind == ASSET__KIND_FILE || kind == -ENOENT) {
        static atomic_uint_fast64_t tmp_seq;
        uint64_t k = asset__now_ns() ^ ((uint64_t)atomic_fetch_add(&tmp_seq, 1) << 40);
        tmp = asset__asprintf("%s.%llx.tmp", path, (unsigned long long)k);
        if (!tmp) {
            asset_free(v);
            asset_free(idx);
            asset_free(last);
            return ASSET_E_NO_MEMORY;
        }
    }
    /* a trace that replaces one keeps its permissions: a trace kept 0600 (it names every
     * asset and path loaded) became 0666 & ~umask, readable by every user (twenty-second
     * review); and it has them from the start: made 0666 & ~umask and only then given
     * the old file's mode, it was readable by others for a moment (twenty-seventh
     * review). Binary ("wb", every open here): Windows' text mode wrote each '\n' as
     * "\r\n", a trace not byte for byte the same on every OS. Failing that, written in
     * place, a file made there (no file beside it) keeping the umask's mode */
    FILE *f = tmp ? asset__fopen_new(tmp, kind == ASSET__KIND_FILE ? path : NULL) : NULL;
    if (!f) {
        asset_free(tmp);
        tmp = NULL;
        f = asset__fopen(path, "wb"); /* UTF-8 (Windows: the UTF-16 name) */
    }
    if (!f) {
        int err = errno; /* the caller reads it: the frees keep it */
        asset_free(v);
        asset_free(idx);
        asset_free(last);
        errno = err;
        /* no memory for the name's UTF-16 form (Windows) or the FILE: as any allocation */
        return err == ENOMEM ? ASSET_E_NO_MEMORY : ASSET_E_IO;
    }
    for (size_t i = 0; i < n; i++) idx[i] = (key_t_){v[i].e.id, i};
    if (n) qsort(idx, n, sizeof *idx, by_id);
    /* each id's run (id 0 is no job's): a load closes when one of its handles was
     * delivered (else it is still under way), after its last event */
    for (size_t a = 0, b; a < n; a = b) {
        bool delivered = false;
        asset_status_t st = ASSET_OK;
        uint64_t at = 0;
        size_t begun = SIZE_MAX;
        unsigned open[3] = {0, 0, 0}; /* read, parse and finalize slices begun, not ended */
        for (b = a; b < n && idx[b].id == idx[a].id; b++) {
            const asset_trace_event_t *e = &v[idx[b].i].e;
            if (e->phase == ASSET_TRACE_DELIVERED) {
                delivered = true;
                st = e->status;
            }
            if (e->phase == ASSET_TRACE_QUEUED && begun == SIZE_MAX) begun = idx[b].i;
            if (e->time_ns > at) at = e->time_ns;
            if (e->phase >= ASSET_TRACE_READ_START && e->phase <= ASSET_TRACE_FINALIZE_END) {
                unsigned *o = &open[(e->phase - ASSET_TRACE_READ_START) / 2];
                if ((e->phase - ASSET_TRACE_READ_START) % 2 == 0)
                    ++*o;
                else if (*o)
                    --*o;
                else if (idx[a].id)
                    last[idx[b].i].unopened = true;
            }
        }
        if (!idx[a].id) continue; /* no job: instants */
        if (begun == SIZE_MAX) {  /* joined midway, or its QUEUED dropped (no memory) */
            begun = idx[a].i;
            last[begun].opens = true;
        }
        /* a step still under way (a cancelled load's parse or read, its end not yet
         * recorded): the load is too. Closed at its DELIVERED, a viewer paired that end
         * with the open step (the innermost slice), and the load stayed open */
        if (delivered && !open[0] && !open[1] && !open[2]) {
            closing_t *c = &last[idx[b - 1].i];
            c->at = at;
            c->begun = begun;
            c->status = st;
            c->on = true;
        }
    }
    uint64_t t0 = n ? v[0].e.time_ns : 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].e.time_ns < t0) t0 = v[i].e.time_ns;
    /* events lost to out of memory (asset_trace_record): said, or the trace's holes (a
     * load without its end) read as what happened (a review). For tools, in otherData;
     * for a person, as a global instant at the start of the timeline */
    fprintf(
        f, "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"dropped_events\":%zu},\"traceEvents\":[\n",
        dropped);
    bool first = true;
    if (dropped) {
        fprintf(f,
                "{\"ph\":\"i\",\"s\":\"g\",\"cat\":\"asset\",\"pid\":1,\"tid\":0,\"ts\":0.000,"
                "\"name\":\"%zu event%s dropped (out of memory): this trace is incomplete\","
                "\"args\":{\"dropped_events\":%zu}}",
                dropped, dropped == 1 ? "" : "s", dropped);
        first = false;
    }
    for (size_t i = 0; i < n; i++) {
        const rec_t *r = &v[i];
        const asset_trace_event_t *e = &r->e;
        char ph[2] = {0, 0};
        const char *name = NULL; /* NULL: the load's own ("load <uri>") */
        switch (e->phase) {
        case ASSET_TRACE_QUEUED: ph[0] = 'b'; break;
        case ASSET_TRACE_READ_START:
        case ASSET_TRACE_PARSE_START:
        case ASSET_TRACE_FINALIZE_START:
            ph[0] = 'b';
            name = slice_name(r);
            break;
        case ASSET_TRACE_READ_END:
        case ASSET_TRACE_PARSE_END:
        case ASSET_TRACE_FINALIZE_END:
            ph[0] = 'e';
            name = slice_name(r);
            break;
        case ASSET_TRACE_DELIVERED:
            ph[0] = e->id ? 'n' : 'i';
            /* id 0: no job, a cache hit or a load that failed before it had one */
            name = e->id                   ? "delivered"
                   : e->status == ASSET_OK ? "delivered from cache"
                                           : "failed without a job";
            break;
        default: break;
        }
        if (last[i].opens) put_event(f, &first, "b", e->thread, e->time_ns - t0, NULL, r, ASSET_OK);
        if (ph[0] && !last[i].unopened)
            put_event(f, &first, ph, e->thread, e->time_ns - t0, name, r, e->status);
        if (last[i].on)
            put_event(f, &first, "e", e->thread, last[i].at - t0, NULL, &v[last[i].begun],
                      last[i].status);
    }
    fputs("\n]}\n", f);
    asset_free(v);
    asset_free(idx);
    asset_free(last);
    bool bad = ferror(f) != 0;
    /* the bytes on the disk before the rename puts them at path: renamed with them still
     * in the OS's cache, a power cut soon after could leave an empty or partial trace
     * where a whole one had been (twenty-third review); its errno is kept for the end.
     * Written in place (a symlink's file, or no file beside path), synced too: it was
     * not, and a power cut soon after could leave it empty where the caller had
     * ASSET_OK (twenty-sixth review); a FIFO or a device has nothing to sync */
    if (!bad && asset__file_sync(f) != 0) bad = true;
    int sync_err = errno;
    if (fclose(f) != 0)
        bad = true;
    else if (bad)
        errno = sync_err;
    if (tmp) {
        bool left = true; /* tmp still there */
        if (!bad && asset__rename_over(tmp, path) == 0) {
            left = false;
            /* the rename itself on the disk (POSIX: the directory's fsync): else a power
             * cut soon after could bring back the old trace (whole: the new one was
             * synced). A failure there is not the write's: the trace is whole at path,
             * as the caller asked, and the writer has no log to say it in; it is the
             * same trace, only less certain to outlast a power cut (twenty-fourth
             * review) */
            (void)asset__dir_sync_of(path);
        } else if (!bad && !((errno == EACCES || errno == EPERM) && copy_in_place(tmp, path) == 0))
            bad = true;
        if (left) {
            int err = errno; /* the write's, the rename's or the copy's, for the caller */
            asset__remove(tmp);
            errno = err;
        }
        asset_free(tmp);
    } else if (!bad && kind == -ENOENT) {
        /* made in place (no file could be made beside path): a new name in the directory,
         * synced as a rename's is, and as there its failure is not the write's; it was
         * not, and a power cut soon after the ASSET_OK could leave no trace at all
         * (twenty-seventh review) */
        (void)asset__dir_sync_of(path);
    }
    /* Windows: the rename's UTF-16 names are allocations; out of memory there said
     * ASSET_E_IO, a disk's error, where every other allocation of the write says
     * ASSET_E_NO_MEMORY (twenty-second review) */
    return !bad ? ASSET_OK : errno == ENOMEM ? ASSET_E_NO_MEMORY : ASSET_E_IO;
}

/* test_cache.c - the per-loader caches: the LRU itself through the internal API
 * (budget, replacement, eviction order, remove/clear, reference counting), then the
 * same guarantees seen through the public API (values outlive eviction, invalidate,
 * clear_caches, no_cache, stats). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "test_util.h"
#include "tu_os.h"

/* ------------------------------------------------------------------------ */
/* Internal API: a fake loader slot whose free_value counts                  */
/* ------------------------------------------------------------------------ */

typedef struct fake {
    asset__loader_slot_t slot;
    int frees;
} fake_t;

static void fake_free(void *ctx, void *value) {
    fake_t *f = ctx;
    f->frees++;
    free(value);
}

static void fake_init(fake_t *f) {
    memset(f, 0, sizeof *f);
    f->slot.vt.abi = ASSET_LOADER_ABI;
    f->slot.vt.name = "fake";
    f->slot.vt.free_value = fake_free;
    f->slot.name = (char *)"fake";
    f->slot.ctx = f;
}

/* A value with one reference (the caller's), costing `cost` bytes. */
static asset__value_t *mkval(fake_t *f, size_t cost) {
    asset__value_t *v = calloc(1, sizeof *v);
    assert_non_null(v);
    atomic_init(&v->refs, 1);
    v->value = malloc(1);
    assert_non_null(v->value);
    v->cost = cost;
    v->loader = &f->slot;
    return v;
}

/* Inserts a fresh value and drops the caller's reference: the cache holds the only one. */
static bool put_owned(asset__cache_t *c, fake_t *f, const char *uri, const char *ver, size_t cost) {
    asset__value_t *v = mkval(f, cost);
    bool ok = asset__cache_put(c, uri, ver, NULL, v);
    asset__value_release(v);
    return ok;
}

/* Walks the LRU list: the sum of the entries' costs, and checks the links agree. */
static size_t lru_sum(const asset__cache_t *c, size_t *count) {
    size_t sum = 0, n = 0;
    const asset__cache_entry_t *prev = NULL;
    for (const asset__cache_entry_t *e = c->lru_head; e; e = e->lru_next) {
        assert_ptr_equal(e->lru_prev, prev);
        sum += e->value->cost;
        n++;
        prev = e;
    }
    assert_ptr_equal(c->lru_tail, prev);
    if (count) *count = n;
    return sum;
}

static void test_budget_never_exceeded_over_10000_random_inserts(void **state) {
    (void)state;
    fake_t f;
    fake_init(&f);
    asset__cache_t c;
    const size_t budget = 64 * 1024;
    asset__cache_init(&c, budget);
    srand(12345);
    int made = 0, refused = 0;
    for (int i = 0; i < 10000; i++) {
        char uri[64];
        snprintf(uri, sizeof uri, "mem://k%d", rand() % 400); /* repeats: replacements too */
        /* mostly small, some near the budget, a few larger than the budget */
        size_t cost;
        int kind = rand() % 100;
        if (kind < 80)
            cost = (size_t)(rand() % 2048);
        else if (kind < 97)
            cost = (size_t)(rand() % (int)budget);
        else
            cost = budget + 1 + (size_t)(rand() % 1000);
        bool ok = put_owned(&c, &f, uri, "v", cost);
        made++;
        if (cost > budget) {
            refused++;
            assert_false(ok);
            assert_null(asset__cache_get(&c, uri));
        } else {
            assert_true(ok);
            asset__cache_entry_t *e = asset__cache_get(&c, uri);
            assert_non_null(e);
            assert_int_equal(e->value->cost, cost);
        }
        assert_true(c.bytes <= c.budget);
        size_t n = 0;
        assert_int_equal(lru_sum(&c, &n), c.bytes);
        assert_int_equal(n, c.map.count);
    }
    assert_true(refused > 0);
    assert_true(c.evictions > 0);
    size_t live = c.map.count;
    /* every value not in the cache any more was freed exactly once */
    assert_int_equal(f.frees, made - (int)live);
    asset__cache_free(&c);
    assert_int_equal(f.frees, made);
}

/* A cache's table grows with its count (a bucket a entry); a budget lowered (or entries
 * invalidated) took the entries and their values, but the table stayed as large as the
 * highest count had made it until the cache was emptied whole: 10,000 entries down to
 * 10 kept 16,384 buckets (128 KiB; 8 MiB after a million). */
static void test_a_cache_that_shrinks_gives_its_table_back(void **state) {
    (void)state;
    fake_t f;
    fake_init(&f);
    asset__cache_t c;
    asset__cache_init(&c, 10000);
    char uri[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(uri, sizeof uri, "mem://t%d", i);
        assert_true(put_owned(&c, &f, uri, NULL, 1));
    }
    assert_true(c.map.nbuckets >= 10000);
    c.budget = 10; /* as asset_server_set_cache_budget does */
    assert_int_equal(asset__cache_evict(&c), 9990);
    assert_int_equal(c.map.count, 10);
    if (c.map.nbuckets > 64)
        fail_msg("10 entries left kept a table of %zu buckets", c.map.nbuckets);
    for (int i = 9990; i < 10000; i++) { /* the most recent stay, and are found */
        snprintf(uri, sizeof uri, "mem://t%d", i);
        assert_non_null(asset__cache_get(&c, uri));
    }
    /* it grows again as it fills, and shrinks as removes empty it */
    c.budget = 10000;
    for (int i = 0; i < 5000; i++) {
        snprintf(uri, sizeof uri, "mem://u%d", i);
        assert_true(put_owned(&c, &f, uri, NULL, 1));
    }
    assert_true(c.map.nbuckets >= 5010);
    for (int i = 0; i < 5000; i++) {
        snprintf(uri, sizeof uri, "mem://u%d", i);
        assert_true(asset__cache_remove(&c, uri));
    }
    assert_true(c.map.nbuckets <= 64);
    for (int i = 9990; i < 10000; i++) {
        snprintf(uri, sizeof uri, "mem://t%d", i);
        assert_non_null(asset__cache_get(&c, uri));
    }
    asset__cache_free(&c);
    assert_int_equal(f.frees, 15000);
}

/* A parse whose value costs 10 bytes and whose labels "a" and "b" cost 100 and 1000. */
static asset_status_t two_label_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    static const char *const names[] = {"a", "b"};
    static const size_t costs[] = {100, 1000};
    for (int i = 0; i < 2; i++) {
        char *l = asset_alloc(1);
        if (!l) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
        asset_status_t st = asset_parse_add_labeled(p, names[i], l, costs[i], NULL, NULL);
        if (st != ASSET_OK) {
            asset_free(l);
            return st;
        }
    }
    char *v = asset_alloc(1);
    if (!v) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    asset_parse_set_value(p, v, 10);
    return ASSET_OK;
}

/* Thirty-first review (coverage): an entry charges its value and every label's cost
 * (asset__value_charge); the last label left out, an asset's biggest sub-asset could
 * sit in the cache beyond its budget. */
static void test_an_entry_charges_its_value_and_every_label(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    static const char *const suffixes[] = {".atlas", NULL};
    asset_loader_t ld = {
        .abi = ASSET_LOADER_ABI, .name = "atlas", .suffixes = suffixes, .parse = two_label_parse};
    assert_int_equal(asset_server_register_loader(s, &ld, NULL, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "x.atlas", "x", 1), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "mem://x.atlas#b", ASSET_OK);
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.bytes_cached, 10 + 100 + 1000);
    asset_handle_release(h);
    asset_server_destroy(s);
}

static void test_value_larger_than_budget_is_not_cached(void **state) {
    (void)state;
    fake_t f;
    fake_init(&f);
    asset__cache_t c;
    asset__cache_init(&c, 100);
    assert_true(put_owned(&c, &f, "mem://small", NULL, 40));
    assert_true(put_owned(&c, &f, "mem://exact", NULL, 60)); /* == remaining budget */
    assert_int_equal(c.bytes, 100);
    assert_false(put_owned(&c, &f, "mem://huge", NULL, 101));
    assert_null(asset__cache_get(&c, "mem://huge"));
    /* refusing the huge one evicted nothing */
    assert_non_null(asset__cache_get(&c, "mem://small"));
    assert_non_null(asset__cache_get(&c, "mem://exact"));
    assert_int_equal(c.evictions, 0);
    assert_int_equal(f.frees, 1); /* only the refused value, freed by our release */
    asset__cache_free(&c);
    assert_int_equal(f.frees, 3);
}

static void test_new_version_replaces_old_entry(void **state) {
    (void)state;
    fake_t f;
    fake_init(&f);
    asset__cache_t c;
    asset__cache_init(&c, 1000);
    asset__value_t *v1 = mkval(&f, 100), *v2 = mkval(&f, 30);
    assert_true(asset__cache_put(&c, "file:///a", "v1", NULL, v1));
    assert_true(asset__cache_put(&c, "file:///a", "v2", NULL, v2));
    assert_int_equal(c.map.count, 1);
    assert_int_equal(c.bytes, 30);
    asset__cache_entry_t *e = asset__cache_get(&c, "file:///a");
    assert_non_null(e);
    assert_string_equal(asset__cache_entry_version(e), "v2");
    assert_ptr_equal(e->value, v2);
    assert_int_equal(c.evictions, 0); /* replacement is not eviction */
    assert_int_equal(f.frees, 0);     /* we still hold v1 */
    asset__value_release(v1);
    assert_int_equal(f.frees, 1);
    /* a new version too large for the budget still drops the stale entry */
    asset__value_t *big = mkval(&f, 5000);
    assert_false(asset__cache_put(&c, "file:///a", "v3", NULL, big));
    assert_null(asset__cache_get(&c, "file:///a"));
    assert_int_equal(c.bytes, 0);
    asset__value_release(big);
    asset__value_release(v2);
    assert_int_equal(f.frees, 3);
    asset__cache_free(&c);
}

/* An entry's key, version and digest live in its own block after it, and the word
 * beside its hash says which of them there are and when it was added: every
 * combination reads back as it was put, a replaced entry reads as the new one, and the
 * age counts from the put (to a tick, ASSET__CE_TICK_NS). */
static void test_entry_keeps_version_digest_and_age_in_its_block(void **state) {
    (void)state;
    fake_t f;
    fake_init(&f);
    asset__cache_t c;
    asset__cache_init(&c, 100000);
    static const char digest[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const char *versions[] = {NULL, asset__version_immutable, "1700000000.123456789:4096"};
    for (int k = 0; k < 6; k++) {
        const char *ver = versions[k % 3], *sha = k >= 3 ? digest : NULL;
        char uri[64];
        snprintf(uri, sizeof uri, "file:///game/asset-%d.bin", k);
        uint64_t t0 = asset__now_ns();
        asset__value_t *v = mkval(&f, 10);
        assert_true(asset__cache_put(&c, uri, ver, sha, v));
        asset__value_release(v);
        asset__cache_entry_t *e = asset__cache_get(&c, uri);
        assert_non_null(e);
        assert_string_equal(asset__cache_entry_key(e), uri);
        if (ver)
            assert_string_equal(asset__cache_entry_version(e), ver);
        else
            assert_null(asset__cache_entry_version(e));
        if (sha)
            assert_string_equal(asset__cache_entry_sha256(e), sha);
        else
            assert_null(asset__cache_entry_sha256(e));
        /* served without I/O: no version, or the immutable one (a copy of its text
         * too: a source may hand its own string) */
        assert_int_equal(asset__cache_entry_immutable(e), k % 3 != 2);
        uint64_t now = asset__now_ns();
        assert_true(asset__cache_entry_age_ns(&c, e, now) <= now - t0 + ASSET__CE_TICK_NS);
    }
    char imm[16];
    snprintf(imm, sizeof imm, "%s", asset__version_immutable);
    asset__value_t *v = mkval(&f, 10);
    assert_true(asset__cache_put(&c, "pkg://game/a.png", imm, digest, v));
    asset__value_release(v);
    asset__cache_entry_t *e = asset__cache_get(&c, "pkg://game/a.png");
    assert_true(asset__cache_entry_immutable(e));
    assert_ptr_equal(asset__cache_entry_version(e), asset__version_immutable);
    assert_string_equal(asset__cache_entry_sha256(e), digest);
    /* the age grows with the clock: spin (no sleep) for four ticks */
    uint64_t t0 = asset__now_ns();
    while (asset__now_ns() - t0 < 4 * ASSET__CE_TICK_NS) continue;
    uint64_t age = asset__cache_entry_age_ns(&c, e, asset__now_ns());
    assert_true(age >= 3 * ASSET__CE_TICK_NS);
    assert_true(age <= asset__now_ns() - t0 + 2 * ASSET__CE_TICK_NS);
    /* a replacement is a new entry: new version, no digest, age from now */
    v = mkval(&f, 10);
    assert_true(asset__cache_put(&c, "pkg://game/a.png", "v2", NULL, v));
    asset__value_release(v);
    e = asset__cache_get(&c, "pkg://game/a.png");
    assert_string_equal(asset__cache_entry_version(e), "v2");
    assert_null(asset__cache_entry_sha256(e));
    assert_false(asset__cache_entry_immutable(e));
    assert_true(asset__cache_entry_age_ns(&c, e, asset__now_ns()) <= ASSET__CE_TICK_NS);
    if (sizeof(void *) == 8) assert_int_equal(sizeof(asset__cache_entry_t), 40);
    asset__cache_free(&c);
    assert_int_equal(f.frees, 8);
}

/* A fresh value's record with room for its entry (a parse's, job.c), value and cost set. */
static asset__value_t *mkroomy(fake_t *f, size_t cost, bool slot, const char *uri, const char *ver,
                               const char *sha) {
    asset__value_t *v =
        asset__value_new_roomy(NULL, &f->slot, slot, asset__cache_entry_size(uri, ver, sha));
    assert_non_null(v);
    v->value = malloc(1);
    assert_non_null(v->value);
    v->cost = cost;
    return v;
}

/* The entry of a value's first put goes in the value's record, where a parse made room
 * for it; everything else (a put again after it left, a second cache, a longer key) gets
 * a block of its own, and the record with its room is freed once, at the value's last
 * release, whichever left first (ASan, valgrind: no use after free, no leak). */
static void test_a_fresh_values_entry_goes_in_its_records_room(void **state) {
    (void)state;
    fake_t f;
    fake_init(&f);
    asset__cache_t c, c2;
    asset__cache_init(&c, 1000);
    asset__cache_init(&c2, 1000);
    static const char digest[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const char *uri = "file:///game/a.bin", *ver = "1700000000.123456789:4096";
    asset__value_t *v = mkroomy(&f, 10, false, uri, ver, digest);
    assert_int_equal(v->room, ASSET__ROOM_FREE);
    /* a longer key than the room was made for: a block of its own, the room kept */
    assert_true(asset__cache_put(&c2, "file:///game/a-much-longer-name.bin", ver, digest, v));
    asset__cache_entry_t *e = asset__cache_get(&c2, "file:///game/a-much-longer-name.bin");
    assert_ptr_not_equal(e, asset__value_room(v));
    assert_int_equal(v->room, ASSET__ROOM_FREE);
    /* the one it was made for: in the room */
    assert_true(asset__cache_put(&c, uri, ver, digest, v));
    e = asset__cache_get(&c, uri);
    assert_ptr_equal(e, asset__value_room(v));
    assert_int_equal(v->room, ASSET__ROOM_USED);
    assert_string_equal(asset__cache_entry_key(e), uri);
    assert_string_equal(asset__cache_entry_version(e), ver);
    assert_string_equal(asset__cache_entry_sha256(e), digest);
    assert_int_equal(atomic_load(&v->refs), 3); /* ours and the two entries' */
    /* it leaves (an eviction, a removal) while a handle holds the value: the room is
     * spent, and the value cached again (a revalidation) has a block of its own */
    assert_true(asset__cache_remove(&c, uri));
    assert_int_equal(v->room, ASSET__ROOM_SPENT);
    assert_int_equal(f.frees, 0);
    assert_true(asset__cache_put(&c, uri, ver, NULL, v));
    e = asset__cache_get(&c, uri);
    assert_ptr_not_equal(e, asset__value_room(v));
    assert_string_equal(asset__cache_entry_key(e), uri);
    assert_null(asset__cache_entry_sha256(e));
    /* the same value put again over its own entry in its room: the old one leaves first */
    asset__value_t *w = mkroomy(&f, 20, false, "mem://w", NULL, NULL);
    assert_true(asset__cache_put(&c, "mem://w", NULL, NULL, w));
    assert_ptr_equal(asset__cache_get(&c, "mem://w"), asset__value_room(w));
    assert_true(asset__cache_put(&c, "mem://w", NULL, NULL, w));
    e = asset__cache_get(&c, "mem://w");
    assert_ptr_not_equal(e, asset__value_room(w));
    assert_false(w->dropped); /* its own value: not dropped */
    assert_int_equal(c.bytes, 30);
    /* the caller's references go first: the entries hold the values */
    asset__value_release(v);
    asset__value_release(w);
    assert_int_equal(f.frees, 0);
    /* a value that the cache alone holds, its entry in its room: freed by the eviction
     * that drops the entry, record, room and all */
    asset__value_t *x = mkroomy(&f, 990, true, "mem://x", asset__version_immutable, NULL);
    assert_true(asset__cache_put(&c, "mem://x", asset__version_immutable, NULL, x));
    assert_ptr_equal(asset__cache_entry_version(asset__cache_get(&c, "mem://x")),
                     asset__version_immutable);
    assert_ptr_equal(asset__cache_get(&c, "mem://x"), asset__value_room(x));
    asset__value_release(x);
    assert_int_equal(f.frees, 1); /* v and w evicted from c: w freed, v in c2 still */
    assert_int_equal(c.evictions, 2);
    asset__cache_clear(&c); /* x: with its room */
    assert_int_equal(f.frees, 2);
    asset__cache_free(&c2); /* v */
    assert_int_equal(f.frees, 3);
    asset__cache_free(&c);
}

/* A record's room moves with it when it gets its extra part (before anything shares it),
 * and the moved room takes the entry. */
static void test_a_records_room_moves_with_its_extra_part(void **state) {
    (void)state;
    fake_t f;
    fake_init(&f);
    asset__cache_t c;
    asset__cache_init(&c, 1000);
    for (int slot = 0; slot < 2; slot++) {
        char uri[64];
        snprintf(uri, sizeof uri, "file:///game/moved-%d.bin", slot);
        asset__value_t *v = mkroomy(&f, 10, slot, uri, "v1", NULL);
        assert_true(asset__value_add_extra(NULL, &v));
        assert_int_equal(v->room, ASSET__ROOM_FREE);
        assert_true(asset__cache_put(&c, uri, "v1", NULL, v));
        asset__cache_entry_t *e = asset__cache_get(&c, uri);
        assert_ptr_equal(e, asset__value_room(v));
        assert_true((char *)e >= (char *)(asset__value_x(v) + 1));
        assert_string_equal(asset__cache_entry_key(e), uri);
        assert_string_equal(asset__cache_entry_version(e), "v1");
        asset__value_release(v);
    }
    asset__cache_free(&c);
    assert_int_equal(f.frees, 2);
}

/* An entry's age is right however long it stays: its time since the cache was made has
 * 29 bits of ASSET__CE_TICK_NS (about 104 days), and its age, taken modulo that, read
 * 105 days as 1 (a game server or an editor left running: a review). Past it, the
 * cache's epoch moves at a put: a new entry reads its own age, an old one at least 52
 * days. The clock is the argument: the times are made up. */
static void test_an_entry_age_does_not_wrap_after_104_days(void **state) {
    (void)state;
    fake_t f;
    fake_init(&f);
    asset__cache_t c;
    asset__cache_init(&c, 100000);
    const uint64_t wrap = (uint64_t)1 << 29, tick = ASSET__CE_TICK_NS, day = 86400000000000u;
    assert_true(put_owned(&c, &f, "file:///old.bin", NULL, 10));
    asset__cache_entry_t *old = asset__cache_get(&c, "file:///old.bin");
    uint64_t t0 = asset__now_ns();
    uint64_t age = asset__cache_entry_age_ns(&c, old, t0 + (wrap + 5) * tick);
    if (age < wrap * tick)
        fail_msg("105 days old read as %llu ms", (unsigned long long)(age / 1000000u));
    assert_true(asset__cache_entry_age_ns(&c, old, t0 + 3 * wrap * tick) >= 3 * wrap * tick - tick);
    /* the cache made 200 days ago, its entry put then: a put now */
    c.epoch_ns -= 200 * day;
    assert_true(put_owned(&c, &f, "file:///new.bin", NULL, 10));
    uint64_t now = asset__now_ns();
    asset__cache_entry_t *e = asset__cache_get(&c, "file:///new.bin");
    old = asset__cache_get(&c, "file:///old.bin");
    assert_true(asset__cache_entry_age_ns(&c, e, now) <= tick);
    age = asset__cache_entry_age_ns(&c, e, now + day);
    assert_true(age >= day - tick && age <= day + tick);
    assert_true(asset__cache_entry_age_ns(&c, old, now) >= 52 * day);
    asset__cache_free(&c);
    assert_int_equal(f.frees, 2);
}

/* asset_server_foreach_cached reads the clock before it takes the lock: an entry put
 * in between was added after that time, and its age, taken modulo 2^29 ticks, read
 * about 104 days (a review). A time before the put reads 0. */
static void test_an_entry_put_after_the_time_asked_reads_age_zero(void **state) {
    (void)state;
    fake_t f;
    fake_init(&f);
    asset__cache_t c;
    asset__cache_init(&c, 100000);
    uint64_t before = asset__now_ns();
    while (asset__now_ns() - before < 2 * ASSET__CE_TICK_NS) continue; /* a later tick */
    assert_true(put_owned(&c, &f, "file:///late.bin", NULL, 10));
    asset__cache_entry_t *e = asset__cache_get(&c, "file:///late.bin");
    uint64_t age = asset__cache_entry_age_ns(&c, e, before);
    if (age)
        fail_msg("an entry put after the time asked read %llu ms old",
                 (unsigned long long)(age / 1000000u));
    asset__cache_free(&c);
    assert_int_equal(f.frees, 1);
}

/* Twenty-first review: asset_server_foreach_cached reads the clock before it takes the
 * snapshot of the loaders and the lock: a loader registered in between (its cache's
 * epoch after that time) with an entry put meanwhile read the time before its epoch as
 * some 2^64 ns after it: an age of centuries. The same for a time taken before an
 * epoch move (every 52 days of a cache's life). */
static void test_a_time_before_the_caches_epoch_reads_age_zero(void **state) {
    (void)state;
    fake_t f;
    fake_init(&f);
    uint64_t before = asset__now_ns();
    while (asset__now_ns() - before < 2 * ASSET__CE_TICK_NS) continue; /* a later tick */
    asset__cache_t c;
    asset__cache_init(&c, 100000); /* a loader registered after the time was read */
    assert_true(put_owned(&c, &f, "mem://late.bin", NULL, 10));
    asset__cache_entry_t *e = asset__cache_get(&c, "mem://late.bin");
    uint64_t age = asset__cache_entry_age_ns(&c, e, before);
    if (age)
        fail_msg("an entry of a cache made after the time asked read %llu days old",
                 (unsigned long long)(age / 86400000000000ull));
    asset__cache_free(&c);
    assert_int_equal(f.frees, 1);
}

/* Decision (docs/loaders-and-caches.md, "What the budget counts"): the budget counts the
 * costs loaders declare, not the entries' own bytes (a long URI costs nothing more), and a
 * value of cost 0 takes none of it: it never makes an insert evict, yet it is in the LRU
 * order and goes when it is the least recently used entry and room is needed. */
static void test_a_cost_0_entry_takes_no_budget_and_is_evicted_in_lru_order(void **state) {
    (void)state;
    fake_t f;
    fake_init(&f);
    asset__cache_t c;
    asset__cache_init(&c, 100);
    assert_true(put_owned(&c, &f, "mem://z", NULL, 0));
    assert_true(put_owned(&c, &f, "mem://a", NULL, 100)); /* fills the budget: z stays */
    char uri[1100];
    for (int i = 0; i < 50; i++) { /* 50 more of cost 0, with URIs of 1 KiB: none charged */
        int n = snprintf(uri, sizeof uri, "mem://zero%02d/", i);
        memset(uri + n, 'x', 1000);
        uri[n + 1000] = 0;
        assert_true(put_owned(&c, &f, uri, "v1", 0));
    }
    size_t n = 0;
    assert_int_equal(lru_sum(&c, &n), 100);
    assert_int_equal(n, 52);
    assert_int_equal(c.bytes, 100);
    assert_int_equal(c.evictions, 0);
    assert_int_equal(f.frees, 0);
    /* a budget lowered to what is charged evicts nothing, however many entries */
    c.budget = 100;
    assert_int_equal(asset__cache_evict(&c), 0);
    /* one byte more: the least recent entries go, z (cost 0) first, until it fits */
    assert_true(put_owned(&c, &f, "mem://b", NULL, 1));
    assert_null(asset__cache_get(&c, "mem://z"));
    assert_null(asset__cache_get(&c, "mem://a"));
    assert_int_equal(c.evictions, 2);
    assert_int_equal(f.frees, 2);
    assert_int_equal(c.bytes, 1);
    assert_int_equal(lru_sum(&c, &n), 1);
    assert_int_equal(n, 51); /* the later cost-0 entries stay: nothing needed their room */
    asset__cache_free(&c);
    assert_int_equal(f.frees, 53);
}

static void test_eviction_follows_least_recent_use(void **state) {
    (void)state;
    fake_t f;
    fake_init(&f);
    asset__cache_t c;
    asset__cache_init(&c, 300);
    assert_true(put_owned(&c, &f, "mem://a", NULL, 100));
    assert_true(put_owned(&c, &f, "mem://b", NULL, 100));
    assert_true(put_owned(&c, &f, "mem://c", NULL, 100));
    assert_non_null(asset__cache_get(&c, "mem://a")); /* a is now the most recent */
    assert_true(put_owned(&c, &f, "mem://d", NULL, 100));
    assert_null(asset__cache_get(&c, "mem://b")); /* b was least recent */
    assert_int_equal(c.evictions, 1);
    assert_int_equal(f.frees, 1);
    /* order now (most recent first): d a c -> touching c then adding 150 evicts a and d */
    assert_non_null(asset__cache_get(&c, "mem://c"));
    assert_true(put_owned(&c, &f, "mem://e", NULL, 150));
    assert_non_null(asset__cache_get(&c, "mem://c"));
    assert_non_null(asset__cache_get(&c, "mem://e"));
    assert_null(asset__cache_get(&c, "mem://a"));
    assert_null(asset__cache_get(&c, "mem://d"));
    assert_int_equal(c.evictions, 3);
    assert_int_equal(c.bytes, 250);
    assert_string_equal(asset__cache_entry_key(c.lru_head), "mem://e");
    assert_string_equal(asset__cache_entry_key(c.lru_tail), "mem://c");
    asset__cache_free(&c);
    assert_int_equal(f.frees, 5);
}

/* Costs near SIZE_MAX (a loader's absurd report) under a budget of SIZE_MAX: the byte
 * count wrapped (SIZE_MAX - 20 + 30 became 9), so nothing was evicted and the cache
 * said it held 9 bytes; under a budget just below SIZE_MAX it went past the budget. */
static void test_costs_near_size_max_never_wrap_the_byte_count(void **state) {
    (void)state;
    fake_t f;
    fake_init(&f);
    const size_t budgets[] = {SIZE_MAX, SIZE_MAX - 5};
    for (size_t b = 0; b < 2; b++) {
        asset__cache_t c;
        asset__cache_init(&c, budgets[b]);
        assert_true(put_owned(&c, &f, "mem://huge", "v", SIZE_MAX - 20));
        assert_true(put_owned(&c, &f, "mem://small", "v", 30));
        if (c.bytes != 30) fail_msg("budget %zu: %zu bytes counted, not 30", c.budget, c.bytes);
        assert_null(asset__cache_get(&c, "mem://huge")); /* evicted: both do not fit */
        assert_non_null(asset__cache_get(&c, "mem://small"));
        assert_int_equal(c.evictions, 1);
        assert_true(put_owned(&c, &f, "mem://max", "v", budgets[b])); /* fits alone */
        assert_int_equal(c.bytes, budgets[b]);
        assert_null(asset__cache_get(&c, "mem://small"));
        asset__cache_free(&c);
        assert_int_equal(c.bytes, 0);
    }
    assert_int_equal(f.frees, 6);
}

static void test_remove_and_clear_release_only_the_cache_reference(void **state) {
    (void)state;
    fake_t f;
    fake_init(&f);
    asset__cache_t c;
    asset__cache_init(&c, 1000);
    asset__value_t *held = mkval(&f, 10); /* a "handle" keeps this one */
    assert_true(asset__cache_put(&c, "mem://held", NULL, NULL, held));
    assert_true(put_owned(&c, &f, "mem://x", NULL, 20));
    assert_true(put_owned(&c, &f, "mem://y", NULL, 30));
    assert_true(asset__cache_remove(&c, "mem://x"));
    assert_false(asset__cache_remove(&c, "mem://x"));
    assert_false(asset__cache_remove(&c, "mem://never"));
    assert_int_equal(f.frees, 1);
    assert_int_equal(c.bytes, 40);
    asset__cache_clear(&c);
    assert_int_equal(c.bytes, 0);
    assert_int_equal(c.map.count, 0);
    assert_null(c.lru_head);
    assert_null(c.lru_tail);
    assert_int_equal(c.evictions, 0);
    assert_int_equal(f.frees, 2); /* y; held is still ours */
    assert_int_equal(atomic_load(&held->refs), 1);
    /* the cache is usable after clear */
    assert_true(put_owned(&c, &f, "mem://z", NULL, 5));
    assert_int_equal(c.bytes, 5);
    asset__value_release(held);
    assert_int_equal(f.frees, 3);
    asset__cache_free(&c);
    assert_int_equal(f.frees, 4);
}

/* ------------------------------------------------------------------------ */
/* Public API                                                                */
/* ------------------------------------------------------------------------ */

typedef struct fixture {
    char *dir;
    asset_server_t *s;
    tu_counter_t c;
} fixture_t;

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof *fx);
    fx->dir = tu_mkdtemp();
    /* One worker: a worker drops its own reference on a value just after it hands the
     * value to the handles, so a free count is only exact once the next job has run. */
    asset_server_config_t cfg = {.max_workers = 1};
    fx->s = asset_server_create(&cfg);
    if (!fx->s) return -1;
    /* 250 bytes: two 100-byte assets fit, a third evicts */
    if (tu_counting_loader_register(fx->s, "count", ".dat", &fx->c, 250) != ASSET_OK) return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture_t *fx = *state;
    asset_server_destroy(fx->s);
    tu_rmrf(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

static char *write_uri(fixture_t *fx, const char *rel, size_t n) {
    char *p = tu_write_pattern(fx->dir, rel, n);
    char *u = tu_file_uri(p);
    free(p);
    return u;
}

static asset_handle_t *load_ok(asset_server_t *s, const char *uri, const asset_load_options_t *o) {
    asset_handle_t *h = asset_server_load(s, uri, o);
    assert_non_null(h);
    asset_status_t st = tu_wait(h);
    if (st != ASSET_OK) fail_msg("%s: %s", uri, asset_handle_error_message(h));
    assert_int_equal(asset_handle_state(h), ASSET_STATE_LOADED);
    return h;
}

static void check_pattern(const asset_bytes_t *b, size_t n) {
    assert_non_null(b);
    assert_int_equal(b->size, n);
    for (size_t i = 0; i < n; i++) assert_int_equal(b->data[i], (uint8_t)(i * 31 + 7));
}

static void test_evicted_value_stays_valid_while_a_handle_holds_it(void **state) {
    fixture_t *fx = *state;
    char *a = write_uri(fx, "a.dat", 100), *b = write_uri(fx, "b.dat", 100),
         *c = write_uri(fx, "c.dat", 100);
    asset_handle_t *ha = load_ok(fx->s, a, NULL);
    const asset_bytes_t *va = asset_handle_value(ha);
    asset_handle_release(load_ok(fx->s, b, NULL));
    asset_handle_release(load_ok(fx->s, c, NULL)); /* evicts a */
    asset_stats_t st;
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.cache_evictions, 1);
    assert_int_equal(st.bytes_cached, 200);
    /* a left the cache, but the handle's reference keeps the value alive */
    assert_int_equal(tu_counter_frees(&fx->c), 0);
    assert_ptr_equal(asset_handle_value(ha), va);
    check_pattern(va, 100);
    asset_handle_release(ha);
    assert_int_equal(tu_counter_frees(&fx->c), 1); /* freed once, on the last release */
    asset_server_flush(fx->s);
    assert_int_equal(tu_counter_frees(&fx->c), 1);
    /* a was evicted: loading it again parses again */
    asset_handle_release(load_ok(fx->s, a, NULL));
    assert_int_equal(tu_counter_parses(&fx->c), 4);
    free(a);
    free(b);
    free(c);
}

static void test_values_freed_exactly_once_at_destroy(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    tu_counter_t c = {0};
    asset_server_t *s = asset_server_create(NULL);
    assert_non_null(s);
    assert_int_equal(tu_counting_loader_register(s, "count", ".dat", &c, 0), ASSET_OK);
    char *p = tu_write_pattern(dir, "x.dat", 10);
    char *u = tu_file_uri(p);
    asset_handle_t *h1 = load_ok(s, u, NULL);
    asset_handle_t *h2 = load_ok(s, u, NULL); /* revalidated: same value */
    assert_ptr_equal(asset_handle_value(h1), asset_handle_value(h2));
    assert_int_equal(tu_counter_parses(&c), 1);
    asset_handle_release(h1);
    assert_int_equal(tu_counter_frees(&c), 0); /* cache + h2 still hold it */
    asset_server_destroy(s);                   /* h2 never released: destroy frees it */
    assert_int_equal(tu_counter_frees(&c), 1);
    tu_rmrf(dir);
    free(dir);
    free(p);
    free(u);
}

static void test_invalidate_forces_a_reparse(void **state) {
    fixture_t *fx = *state;
    char *p = tu_write_pattern(fx->dir, "inv.dat", 50);
    char *u = tu_file_uri(p);
    asset_handle_release(load_ok(fx->s, u, NULL));
    asset_handle_release(load_ok(fx->s, u, NULL));
    assert_int_equal(tu_counter_parses(&fx->c), 1); /* second was NOT_MODIFIED */
    /* invalidate through the bare path: it names the same normalised URI */
    asset_server_invalidate(fx->s, p);
    asset_stats_t st;
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.bytes_cached, 0);
    assert_int_equal(tu_counter_frees(&fx->c), 1);
    asset_handle_release(load_ok(fx->s, u, NULL));
    assert_int_equal(tu_counter_parses(&fx->c), 2);
    /* invalid URIs and unknown ones are ignored */
    asset_server_invalidate(fx->s, "");
    asset_server_invalidate(fx->s, "pkg://../x");
    asset_server_invalidate(fx->s, "mem://never-loaded");
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.bytes_cached, 50);
    free(p);
    free(u);
}

/* "uri#label" names uri's asset in a load, and in asset_server_reload; invalidate
 * parsed it whole, so the '#' became "%23": the asset's entry stayed (the next load got
 * the old value) and the entry of a name with a '#' in it went instead. */
static void test_invalidate_of_a_labeled_uri_drops_its_assets_entry(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(asset_mem_put(fx->s, "atlas.dat", "0123456789", 10), ASSET_OK);
    assert_int_equal(asset_mem_put(fx->s, "b#c.dat", "abc", 3), ASSET_OK);
    asset_handle_release(load_ok(fx->s, "mem://atlas.dat", NULL));
    asset_handle_release(load_ok(fx->s, "mem://b%23c.dat", NULL));
    asset_stats_t st;
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.bytes_cached, 13);
    asset_server_invalidate(fx->s, "mem://atlas.dat#hero");
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.bytes_cached, 3);
    /* mem://b with the label c.dat: not the key "b#c.dat" */
    asset_server_invalidate(fx->s, "mem://b#c.dat");
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.bytes_cached, 3);
    asset_handle_release(load_ok(fx->s, "mem://atlas.dat", NULL));
    assert_int_equal(tu_counter_parses(&fx->c), 3); /* parsed afresh */
}

/* An IMMUTABLE source that versions what it reads (a content hash, say). */
static atomic_int cdn_reads;
static asset_status_t cdn_read(void *ctx, asset_request_t *r) {
    (void)ctx;
    atomic_fetch_add(&cdn_reads, 1);
    asset_request_set_version(r, "sha-1234");
    return asset_request_write(r, "0123456789", 10);
}

/* ASSET_SOURCE_IMMUTABLE: "content never changes: a cache hit needs no I/O". One whose
 * reads set a version had its entries revalidated like a mutable source's (the built-in
 * pkg source's watched mounts use that): each load read it again and, since it knew
 * nothing of NOT_MODIFIED, parsed it again. */
static void test_an_immutable_source_that_sets_a_version_is_served_from_the_cache(void **state) {
    fixture_t *fx = *state;
    atomic_store(&cdn_reads, 0);
    asset_source_t src = {ASSET_SOURCE_ABI, "cdn", ASSET_SOURCE_IMMUTABLE, cdn_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(fx->s, &src, NULL), ASSET_OK);
    for (int i = 0; i < 3; i++) asset_handle_release(load_ok(fx->s, "cdn://host/a.dat", NULL));
    assert_int_equal(atomic_load(&cdn_reads), 1);
    assert_int_equal(tu_counter_parses(&fx->c), 1);
    asset_server_invalidate(fx->s, "cdn://host/a.dat"); /* what still reads it again */
    asset_handle_release(load_ok(fx->s, "cdn://host/a.dat", NULL));
    assert_int_equal(atomic_load(&cdn_reads), 2);
    assert_int_equal(tu_counter_parses(&fx->c), 2);
}

static void test_clear_caches_keeps_held_values_valid(void **state) {
    fixture_t *fx = *state;
    char *a = write_uri(fx, "ca.dat", 60), *b = write_uri(fx, "cb.dat", 70);
    asset_handle_t *ha = load_ok(fx->s, a, NULL);
    asset_handle_release(load_ok(fx->s, b, NULL));
    /* a json asset lands in the json loader's cache: clear_caches empties all caches */
    assert_int_equal(asset_mem_put(fx->s, "cfg.json", "{\"k\": [1, 2, 3]}", 16), ASSET_OK);
    asset_handle_release(load_ok(fx->s, "mem://cfg.json", NULL));
    asset_stats_t st;
    asset_server_stats(fx->s, &st);
    assert_true(st.bytes_cached > 130);
    asset_server_clear_caches(fx->s);
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.bytes_cached, 0);
    assert_int_equal(st.cache_evictions, 0);       /* clearing is not evicting */
    assert_int_equal(tu_counter_frees(&fx->c), 1); /* b; a is held */
    check_pattern(asset_handle_value(ha), 60);
    asset_handle_release(ha);
    assert_int_equal(tu_counter_frees(&fx->c), 2);
    asset_handle_release(load_ok(fx->s, a, NULL));
    assert_int_equal(tu_counter_parses(&fx->c), 3);
    free(a);
    free(b);
}

static void test_no_cache_skips_lookup_and_insert(void **state) {
    fixture_t *fx = *state;
    char *u = write_uri(fx, "nc.dat", 40);
    asset_load_options_t nc = {.no_cache = true};
    asset_handle_release(load_ok(fx->s, u, &nc));
    asset_stats_t st;
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.bytes_cached, 0);          /* no insert */
    asset_handle_release(load_ok(fx->s, u, NULL)); /* a miss: parses, inserts */
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.bytes_cached, 40);
    asset_handle_t *h = load_ok(fx->s, u, &nc); /* no lookup: a full read and parse */
    assert_int_equal(tu_counter_parses(&fx->c), 3);
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.cache_hits, 0);
    assert_int_equal(st.source_reads, 3);
    /* the no_cache value is not the cached one; both stay valid */
    asset_handle_t *cached = load_ok(fx->s, u, NULL);
    assert_ptr_not_equal(asset_handle_value(h), asset_handle_value(cached));
    check_pattern(asset_handle_value(h), 40);
    check_pattern(asset_handle_value(cached), 40);
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.cache_hits, 1);
    assert_int_equal(tu_counter_parses(&fx->c), 3);
    asset_handle_release(h);
    asset_handle_release(cached);
    assert_int_equal(tu_counter_frees(&fx->c), 2); /* the two no_cache values */
    free(u);
}

/* A revalidation that finds its value current ("not modified") after the cache evicted
 * it caches it again: the next load had to read and parse it afresh (a review). An
 * entry removed on purpose (invalidate) stays gone. */
static bool count_cache_bytes(const asset_loader_info_t *i, void *user) {
    if (!strcmp(i->name, "count")) *(size_t *)user = i->bytes;
    return true;
}

static size_t count_bytes(asset_server_t *s) {
    size_t n = SIZE_MAX;
    asset_server_foreach_loader(s, count_cache_bytes, &n);
    return n;
}

static void test_a_not_modified_revalidation_caches_an_evicted_value_again(void **state) {
    fixture_t *fx = *state;
    asset_server_config_t cfg = {.max_workers = 1};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    if (s->nworkers == 0) { /* the single-threaded web build: no worker to hold at a gate */
        asset_server_destroy(s);
        skip();
    }
    tu_counter_t c = {0};
    assert_int_equal(tu_counting_loader_register(s, "count", ".dat", &c, 250), ASSET_OK);
    tu_gate_t *g[2] = {tu_gate_register(s, "gate0"), tu_gate_register(s, "gate1")};
    char *u = write_uri(fx, "nm.dat", 100);
    asset_handle_release(load_ok(s, u, NULL)); /* cached */
    for (int drop = 0; drop < 2; drop++) {
        /* the one worker waits at the gate: the revalidation stays queued */
        asset_handle_t *gh =
            asset_server_load(s, drop ? "gate1://block.bin" : "gate0://block.bin", NULL);
        tu_gate_wait_entered(g[drop], 1);
        asset_handle_t *h = asset_server_load(s, u, NULL); /* a hit to revalidate */
        if (drop) {
            asset_server_invalidate(s, u);
        } else { /* evicted, then room again */
            assert_int_equal(asset_server_set_cache_budget(s, "count", 1), ASSET_OK);
            assert_int_equal(asset_server_set_cache_budget(s, "count", 250), ASSET_OK);
        }
        assert_int_equal(count_bytes(s), 0);
        assert_int_equal(tu_wait(h), ASSET_OK); /* runs the queued job here: not modified */
        check_pattern(asset_handle_value(h), 100);
        assert_int_equal(tu_counter_parses(&c), 1);
        assert_int_equal(count_bytes(s), drop ? 0 : 100);
        asset_handle_release(h);
        asset_handle_release(load_ok(s, u, NULL)); /* a revalidated hit, or a parse */
        assert_int_equal(tu_counter_parses(&c), 1 + drop);
        tu_gate_open(g[drop]);
        assert_int_equal(tu_wait(gh), ASSET_OK);
        asset_handle_release(gh);
    }
    asset_server_destroy(s);
    tu_gate_free(g[0]);
    tu_gate_free(g[1]);
    free(u);
}

/* A load after asset_server_invalidate() joined a revalidation of the invalidated value
 * still in flight: "not modified" handed it the very value the invalidate dropped, with
 * no parse (the loads before it, in flight, keep theirs: that is documented). */
static void
test_a_load_after_invalidate_does_not_join_a_revalidation_of_the_old_value(void **state) {
    fixture_t *fx = *state;
    asset_server_config_t cfg = {.max_workers = 1};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    if (s->nworkers == 0) { /* the single-threaded web build: no worker to hold at a gate */
        asset_server_destroy(s);
        skip();
    }
    tu_counter_t c = {0};
    assert_int_equal(tu_counting_loader_register(s, "count", ".dat", &c, 0), ASSET_OK);
    tu_gate_t *g = tu_gate_register(s, "gate");
    char *u = write_uri(fx, "inv.dat", 100);
    asset_handle_t *first = load_ok(s, u, NULL); /* cached; held: its address stays its own */
    const void *old = asset_handle_value(first);
    /* the one worker waits at the gate: the revalidation stays queued */
    asset_handle_t *gh = asset_server_load(s, "gate://block.bin", NULL);
    tu_gate_wait_entered(g, 1);
    asset_handle_t *before = asset_server_load(s, u, NULL); /* a hit to revalidate */
    asset_server_invalidate(s, u);
    asset_handle_t *after = asset_server_load(s, u, NULL);
    assert_int_equal(tu_wait(before), ASSET_OK);
    assert_ptr_equal(asset_handle_value(before), old); /* in flight: unaffected */
    assert_int_equal(tu_wait(after), ASSET_OK);
    check_pattern(asset_handle_value(after), 100);
    assert_ptr_not_equal(asset_handle_value(after), old); /* parsed afresh */
    assert_int_equal(tu_counter_parses(&c), 2);
    asset_handle_release(before);
    asset_handle_release(after);
    asset_handle_release(first);
    tu_gate_open(g);
    assert_int_equal(tu_wait(gh), ASSET_OK);
    asset_handle_release(gh);
    asset_server_destroy(s);
    tu_gate_free(g);
    free(u);
}

/* An IMMUTABLE source of the program's whose content changes (a mod folder, an editor's
 * buffer), told to the server by asset_server_invalidate(): a read that began before
 * (it holds the old bytes) was joined by the loads after the invalidate, and its value
 * was cached, so every later load was served the old bytes without a read. */
typedef struct changing {
    uv_mutex_t mu;
    uv_cond_t cond;
    char content[8];
    bool hold, held, go;
    int reads;
} changing_t;

/* The content as it is when a read begins, into bytes; a read asked to hold waits there
 * until the test lets it go. */
static void changing_begin(changing_t *c, char bytes[8]) {
    uv_mutex_lock(&c->mu);
    memcpy(bytes, c->content, 8);
    c->reads++;
    if (c->hold) {
        c->hold = false;
        c->held = true;
        uv_cond_broadcast(&c->cond);
        while (!c->go) uv_cond_wait(&c->cond, &c->mu);
    }
    uv_mutex_unlock(&c->mu);
}

static asset_status_t changing_read(void *ctx, asset_request_t *r) {
    char bytes[8];
    changing_begin(ctx, bytes);
    return asset_request_write(r, bytes, strlen(bytes));
}

/* The same content, versioned by itself, for a source that revalidates (no IMMUTABLE). */
static asset_status_t versioned_read(void *ctx, asset_request_t *r) {
    char bytes[8];
    changing_begin(ctx, bytes);
    const char *cached = asset_request_cached_version(r);
    if (cached && !strcmp(cached, bytes)) return ASSET_NOT_MODIFIED;
    asset_request_set_version(r, bytes);
    return asset_request_write(r, bytes, strlen(bytes));
}

/* A server of two workers reading c (content "v1", its first read held when hold)
 * through the source "changing" (IMMUTABLE, changing_read) or "versioned"
 * (versioned_read); NULL on the single-threaded web build, with no worker to hold a
 * read (the test skips). */
static asset_server_t *changing_server(changing_t *c, bool versioned, bool hold) {
    asset_server_t *s = tu_server(2);
    if (s->nworkers == 0) {
        asset_server_destroy(s);
        return NULL;
    }
    *c = (changing_t){.content = "v1", .hold = hold};
    assert_int_equal(uv_mutex_init(&c->mu), 0);
    assert_int_equal(uv_cond_init(&c->cond), 0);
    const asset_source_t src = {.abi = ASSET_SOURCE_ABI,
                                .scheme = versioned ? "versioned" : "changing",
                                .flags = versioned ? 0 : ASSET_SOURCE_IMMUTABLE,
                                .read = versioned ? versioned_read : changing_read};
    assert_int_equal(asset_server_register_source(s, &src, c), ASSET_OK);
    return s;
}

/* Waits until the held read has begun; the content becomes `now` (NULL: kept). */
static void changing_wait_held(changing_t *c, const char *now) {
    uv_mutex_lock(&c->mu);
    TU_WAIT_UNTIL(c->held, &c->cond, &c->mu);
    if (now) snprintf(c->content, sizeof c->content, "%s", now);
    uv_mutex_unlock(&c->mu);
}

/* The next read holds (changing_wait_held), or the held one goes on (changing_go). */
static void changing_hold_next(changing_t *c) {
    uv_mutex_lock(&c->mu);
    c->hold = true;
    uv_mutex_unlock(&c->mu);
}
static void changing_go(changing_t *c) {
    uv_mutex_lock(&c->mu);
    c->go = true;
    uv_cond_broadcast(&c->cond);
    uv_mutex_unlock(&c->mu);
}

/* Destroys s, then c's lock and condition. */
static void changing_close(asset_server_t *s, changing_t *c) {
    asset_server_destroy(s);
    uv_cond_destroy(&c->cond);
    uv_mutex_destroy(&c->mu);
}

/* A read of changing://a.bin in flight holds "v1" when tell(s) says the source changed
 * (its content "v2" by then): a load made after it gets "v2", as does a later one (no
 * entry of "v1" was cached); the load before keeps "v1". */
static void expect_a_read_in_flight_told_its_bytes_are_old(void (*tell)(asset_server_t *s)) {
    changing_t c;
    asset_server_t *s = changing_server(&c, false, true);
    if (!s) skip();
    asset_handle_t *before = asset_server_load(s, "changing://a.bin", NULL);
    changing_wait_held(&c, "v2"); /* it read "v1" */
    tell(s);
    asset_handle_t *after = asset_server_load(s, "changing://a.bin", NULL);
    changing_go(&c);
    assert_int_equal(tu_wait(before), ASSET_OK);
    tu_expect_text(before, "v1"); /* in flight: unaffected */
    assert_int_equal(tu_wait(after), ASSET_OK);
    tu_expect_text(after, "v2"); /* "v1" before: it joined the old read */
    asset_handle_release(before);
    asset_handle_release(after);
    asset_handle_t *later = tu_load_wait(s, "changing://a.bin", ASSET_OK);
    tu_expect_text(later, "v2"); /* "v1", from the cache, before */
    asset_handle_release(later);
    changing_close(s, &c);
    assert_int_equal(c.reads, 2);
}

static void invalidate_a(asset_server_t *s) { asset_server_invalidate(s, "changing://a.bin"); }

static void test_invalidate_tells_a_read_in_flight_its_bytes_are_old(void **state) {
    (void)state;
    expect_a_read_in_flight_told_its_bytes_are_old(invalidate_a);
}

/* Thirty-sixth review: asset_server_clear_caches(), the packages guide's other way to say
 * that sources changed (after a remount, or an IMMUTABLE source of the program's whose
 * content changed), did only what its name says: a read in flight that began before it
 * (holding "v1") was joined by a load made after it, and its value was cached, so every
 * later load was served "v1" from the cache without a read, as invalidate did before the
 * nineteenth review. Now it tells every read in flight what invalidate tells one. */
static void test_clear_caches_tells_every_read_in_flight_its_bytes_are_old(void **state) {
    (void)state;
    expect_a_read_in_flight_told_its_bytes_are_old(asset_server_clear_caches);
}

/* Thirty-first review (coverage): asset_server_clear_caches() while a hit revalidates:
 * the source's "not modified" puts no entry back (the value was cleared: it stays gone,
 * as after an invalidate), which a clear that left its values undropped would. */
static void test_a_revalidation_puts_back_no_entry_that_clear_caches_removed(void **state) {
    (void)state;
    changing_t c;
    asset_server_t *s = changing_server(&c, true, false);
    if (!s) skip();
    const char *uri = "versioned://a.bin";
    asset_handle_t *first = tu_load_wait(s, uri, ASSET_OK);
    changing_hold_next(&c);
    asset_handle_t *hit = asset_server_load(s, uri, NULL); /* revalidates "v1" */
    changing_wait_held(&c, NULL);
    asset_server_clear_caches(s);
    changing_go(&c);
    assert_int_equal(tu_wait(hit), ASSET_OK);
    tu_expect_text(hit, "v1");
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.bytes_cached, 0);
    asset_handle_release(first);
    asset_handle_release(hit);
    changing_close(s, &c);
}

/* The same source told of its change by asset_server_reload(): a read that began before
 * (it holds "v1") ends after the reload put "v2" in the cache. Its put replaced that entry
 * with "v1", so once the handles that would have reloaded it were gone, every later load
 * was served "v1" from the cache, without a read. */
static void test_a_read_older_than_a_reload_does_not_replace_its_cache_entry(void **state) {
    (void)state;
    changing_t c;
    asset_server_t *s = changing_server(&c, false, false);
    if (!s) skip();
    const char *uri = "changing://a.bin";
    asset_handle_t *live = tu_load_wait(s, uri, ASSET_OK); /* the handle a reload reloads */
    asset_server_invalidate(s, uri);                       /* no change: the next load reads */
    changing_hold_next(&c);
    asset_handle_t *old = asset_server_load(s, uri, NULL);
    changing_wait_held(&c, "v2"); /* it read "v1" */
    asset_server_reload(s, uri);  /* reads "v2" on the other worker, and caches it */
    asset_stats_t st;
    TU_SPIN_UNTIL((asset_server_flush(s), asset_server_stats(s, &st), st.reloads == 1));
    tu_expect_text(live, "v2");
    changing_go(&c);
    tu_wait_queued(s, 1);      /* the old read's value, decided */
    asset_handle_release(old); /* before it is published: nothing reloads it */
    asset_handle_release(live);
    asset_server_flush(s);
    asset_handle_t *later = tu_load_wait(s, uri, ASSET_OK);
    const asset_bytes_t *b = asset_handle_value(later);
    if (strcmp((const char *)b->data, "v2"))
        fail_msg("a load after the reload got \"%s\", from the cache", (const char *)b->data);
    asset_handle_release(later);
    changing_close(s, &c);
}

/* A load made after asset_server_reload() joined a read of the same URI that began
 * before it (it holds "v1"): the program, told nothing of a reload (no handle of the URI
 * was loaded yet), got the old bytes from a load it made after the change. */
static void test_a_load_after_a_reload_joins_no_read_that_began_before(void **state) {
    (void)state;
    changing_t c;
    asset_server_t *s = changing_server(&c, false, true);
    if (!s) skip();
    const char *uri = "changing://a.bin";
    asset_handle_t *before = asset_server_load(s, uri, NULL);
    changing_wait_held(&c, "v2"); /* it read "v1" */
    asset_server_reload(s, uri);
    asset_handle_t *after = asset_server_load(s, uri, NULL);
    changing_go(&c);
    assert_int_equal(tu_wait(before), ASSET_OK);
    tu_expect_text(before, "v1"); /* in flight: its own read's */
    assert_int_equal(tu_wait(after), ASSET_OK);
    const asset_bytes_t *b = asset_handle_value(after);
    if (strcmp((const char *)b->data, "v2"))
        fail_msg("a load after the reload got \"%s\": it joined the read before",
                 (const char *)b->data);
    asset_handle_release(before);
    asset_handle_release(after);
    changing_close(s, &c);
}

/* stats.cache_hits counts a revalidation ("not modified") once, however many loads
 * joined it: those count in stats.coalesced, as they do for a parse's cache_misses, so
 * that, reloads aside, every load is one of a hit, a miss, a join (or a failure). */
static void test_a_joined_revalidation_is_one_cache_hit(void **state) {
    (void)state;
    changing_t c;
    asset_server_t *s = changing_server(&c, true, false);
    if (!s) skip();
    const char *uri = "versioned://a.bin";
    enum { JOINS = 3 };
    asset_handle_t *first = tu_load_wait(s, uri, ASSET_OK), *hs[1 + JOINS];
    changing_hold_next(&c);
    hs[0] = asset_server_load(s, uri, NULL); /* revalidates against "v1" */
    changing_wait_held(&c, NULL);
    for (int i = 1; i <= JOINS; i++) hs[i] = asset_server_load(s, uri, NULL);
    changing_go(&c);
    for (int i = 0; i <= JOINS; i++) {
        assert_int_equal(tu_wait(hs[i]), ASSET_OK);
        assert_ptr_equal(asset_handle_value(hs[i]), asset_handle_value(first));
        asset_handle_release(hs[i]);
    }
    asset_handle_release(first);
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(c.reads, 2);
    assert_int_equal(st.cache_misses, 1);
    assert_int_equal(st.coalesced, JOINS);
    assert_int_equal(st.cache_hits, 1);
    assert_int_equal(st.cache_hits + st.cache_misses + st.coalesced, 2 + JOINS); /* the loads */
    changing_close(s, &c);
}

static void test_stats_count_hits_misses_evictions_and_bytes(void **state) {
    fixture_t *fx = *state;
    char *a = write_uri(fx, "sa.dat", 100), *b = write_uri(fx, "sb.dat", 100),
         *c = write_uri(fx, "sc.dat", 30);
    asset_stats_t st;
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.cache_hits + st.cache_misses + st.cache_evictions + st.bytes_cached, 0);
    asset_handle_release(load_ok(fx->s, a, NULL)); /* miss */
    asset_handle_release(load_ok(fx->s, a, NULL)); /* hit (revalidated) */
    asset_handle_release(load_ok(fx->s, b, NULL)); /* miss */
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.cache_misses, 2);
    assert_int_equal(st.cache_hits, 1);
    assert_int_equal(st.cache_evictions, 0);
    assert_int_equal(st.bytes_cached, 200);
    assert_int_equal(st.parses, 2);
    asset_handle_release(load_ok(fx->s, c, NULL)); /* 230 <= 250: no eviction */
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.cache_evictions, 0);
    assert_int_equal(st.bytes_cached, 230);
    asset_handle_release(load_ok(fx->s, a, NULL)); /* hit: a becomes most recent */
    char *d = write_uri(fx, "sd.dat", 150);
    asset_handle_release(load_ok(fx->s, d, NULL)); /* 380: evicts b (LRU), then c */
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.cache_evictions, 2);
    assert_int_equal(st.bytes_cached, 250);
    assert_int_equal(st.cache_misses, 4);
    assert_int_equal(st.cache_hits, 2);
    assert_int_equal(st.completed, 6);
    free(a);
    free(b);
    free(c);
    free(d);
}

/* ---- the counts under concurrency ---- */

enum { CONC_KEYS = 16, CONC_HOSTS = 4, CONC_ITERS = 1500, CONC_SIZE = 100 };

typedef struct conc {
    asset_server_t *s;
    atomic_int loads, errors, hosts_done;
    char first_error[200];
} conc_t;

typedef struct conc_host {
    conc_t *cx;
    uint64_t rng;
} conc_host_t;

static unsigned conc_next(conc_host_t *h) {
    h->rng ^= h->rng << 13;
    h->rng ^= h->rng >> 7;
    h->rng ^= h->rng << 17;
    return (unsigned)(h->rng >> 11);
}

static void conc_err(conc_t *cx, const char *what, const char *uri) {
    if (atomic_fetch_add(&cx->errors, 1) == 0)
        snprintf(cx->first_error, sizeof cx->first_error, "%s: %s", uri, what);
}

/* Loads (each checked against its key's bytes, one kept while the next loads: a value
 * evicted under a handle), budget changes down to a value and a half, clear_caches and
 * invalidate, on its own thread. */
static void conc_host_main(void *arg) {
    conc_host_t *h = arg;
    conc_t *cx = h->cx;
    asset_handle_t *held = NULL;
    static const size_t budgets[] = {CONC_SIZE * 3 / 2, CONC_SIZE * 4, CONC_SIZE * 10, 0};
    for (int i = 0; i < CONC_ITERS; i++) {
        unsigned r = conc_next(h), k = r % CONC_KEYS, op = (r >> 8) % 100;
        char uri[32];
        snprintf(uri, sizeof uri, "mem://k%02u.dat", k);
        if (op < 88) {
            asset_handle_t *x = asset_server_load(cx->s, uri, NULL);
            atomic_fetch_add(&cx->loads, 1);
            if (!x) {
                conc_err(cx, "no handle", uri);
                continue;
            }
            if (asset_handle_wait(x, 60000) != ASSET_OK) {
                conc_err(cx, asset_handle_error_message(x), uri);
            } else {
                const asset_bytes_t *b = asset_handle_value(x);
                if (!b || b->size != CONC_SIZE || b->data[0] != 'a' + k ||
                    b->data[CONC_SIZE - 1] != 'a' + k)
                    conc_err(cx, "wrong bytes", uri);
            }
            if (held) asset_handle_release(held);
            held = x;
        } else if (op < 94) {
            int rc = asset_server_set_cache_budget(cx->s, "count", budgets[r % 4]);
            if (rc != ASSET_OK) conc_err(cx, "set_cache_budget failed", "count");
        } else if (op < 97) {
            asset_server_clear_caches(cx->s);
        } else {
            asset_server_invalidate(cx->s, uri);
        }
    }
    if (held) asset_handle_release(held);
    atomic_fetch_add(&cx->hosts_done, 1);
}

static bool conc_sum(const asset_cache_info_t *i, void *user) {
    size_t *sum = user;
    sum[0] += i->bytes;
    sum[1]++;
    sum[2] += i->handles;
    return true;
}

static bool conc_loader(const asset_loader_info_t *i, void *user) {
    asset_loader_info_t *out = user;
    if (!strcmp(i->name, "count")) *out = *i;
    return true;
}

/* Loads from four threads of 16 keys under a budget of one to ten values, changed,
 * cleared and invalidated meanwhile: every load gets its bytes, each one is a hit, a miss
 * or a join (stats), what the stats, the cache walk and the loader's record charge agree
 * and keep to the budget, and every value parsed is freed once (no coverage of a defect:
 * the counts and the LRU under contention). */
static void
test_the_counts_stay_exact_under_loads_budget_changes_and_clears_from_many_threads(void **state) {
    (void)state;
    tu_os_watchdog(240);
    tu_counter_t counter = {0};
    asset_server_config_t cfg = {.max_workers = 2};
    conc_t *cx = calloc(1, sizeof *cx);
    assert_non_null(cx);
    cx->s = asset_server_create(&cfg);
    assert_non_null(cx->s);
    if (cx->s->nworkers == 0) { /* the single-threaded web build: no host thread to make */
        asset_server_destroy(cx->s);
        free(cx);
        skip();
        return; /* skip() jumps out; gcc does not know it (-Wuse-after-free) */
    }
    assert_int_equal(tu_counting_loader_register(cx->s, "count", ".dat", &counter, 4 * CONC_SIZE),
                     ASSET_OK);
    for (unsigned k = 0; k < CONC_KEYS; k++) {
        char key[32], val[CONC_SIZE];
        snprintf(key, sizeof key, "k%02u.dat", k);
        memset(val, 'a' + (int)k, sizeof val);
        assert_int_equal(asset_mem_put(cx->s, key, val, sizeof val), ASSET_OK);
    }
    asset_server_flush(cx->s); /* this thread is the flush thread */
    conc_host_t hosts[CONC_HOSTS];
    uv_thread_t th[CONC_HOSTS];
    for (unsigned i = 0; i < CONC_HOSTS; i++) {
        hosts[i] = (conc_host_t){.cx = cx, .rng = 0x9e3779b97f4a7c15ull * (i + 1)};
        assert_int_equal(uv_thread_create(&th[i], conc_host_main, &hosts[i]), 0);
    }
    TU_FLUSH_UNTIL(cx->s, atomic_load(&cx->hosts_done) == CONC_HOSTS);
    for (unsigned i = 0; i < CONC_HOSTS; i++) uv_thread_join(&th[i]);
    asset_server_flush(cx->s);
    if (atomic_load(&cx->errors))
        fail_msg("%d error(s), first: %s", atomic_load(&cx->errors), cx->first_error);
    asset_stats_t st;
    asset_server_stats(cx->s, &st);
    /* every load succeeded: a hit, a miss (a parse) or a join, once each */
    assert_int_equal(st.completed, atomic_load(&cx->loads));
    assert_int_equal(st.cache_hits + st.cache_misses + st.coalesced, atomic_load(&cx->loads));
    assert_int_equal(st.cache_misses, tu_counter_parses(&counter));
    size_t sum[3] = {0};
    asset_server_foreach_cached(cx->s, conc_sum, sum);
    asset_loader_info_t li;
    memset(&li, 0, sizeof li);
    assert_int_equal(asset_server_foreach_loader(cx->s, conc_loader, &li) >= 1, true);
    assert_int_equal(sum[0], st.bytes_cached); /* only the count loader caches */
    assert_int_equal(li.bytes, st.bytes_cached);
    assert_int_equal(li.entries, sum[1]);
    assert_int_equal(sum[0], sum[1] * CONC_SIZE);
    assert_true(li.bytes <= li.budget);
    assert_int_equal(li.evictions, st.cache_evictions);
    assert_int_equal(sum[2], 0); /* every handle released */
    print_message("%d loads: %llu hits, %llu misses, %llu joins, %llu evictions\n",
                  atomic_load(&cx->loads), (unsigned long long)st.cache_hits,
                  (unsigned long long)st.cache_misses, (unsigned long long)st.coalesced,
                  (unsigned long long)st.cache_evictions);
    asset_server_clear_caches(cx->s);
    asset_server_flush(cx->s);
    assert_int_equal(tu_counter_frees(&counter), tu_counter_parses(&counter));
    asset_server_destroy(cx->s);
    free(cx);
    tu_os_watchdog(0);
}

/* ---- asset_server_set_cache_budget ---- */

static void test_set_cache_budget_evicts_down_to_the_new_budget_at_once(void **state) {
    fixture_t *fx = *state;
    char *a = write_uri(fx, "ba.dat", 100), *b = write_uri(fx, "bb.dat", 100);
    asset_handle_t *ha = load_ok(fx->s, a, NULL);
    const asset_bytes_t *va = asset_handle_value(ha);
    asset_handle_release(load_ok(fx->s, b, NULL)); /* b most recent */
    asset_stats_t st;
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.bytes_cached, 200);
    /* the json cache holds something too, and must not be touched */
    assert_int_equal(asset_mem_put(fx->s, "k.json", "[1,2,3]", 7), ASSET_OK);
    asset_handle_release(load_ok(fx->s, "mem://k.json", NULL));
    asset_server_stats(fx->s, &st);
    uint64_t json_bytes = st.bytes_cached - 200;
    assert_true(json_bytes > 0);

    assert_int_equal(asset_server_set_cache_budget(fx->s, "count", 150), ASSET_OK);
    asset_server_stats(fx->s, &st); /* no flush, no load: evicted during the call */
    assert_int_equal(st.cache_evictions, 1);
    assert_int_equal(st.bytes_cached, 100 + json_bytes); /* a (least recent) went */
    assert_ptr_equal(asset_handle_value(ha), va);        /* still held by the handle */
    check_pattern(va, 100);

    /* b is still cached (revalidated, not parsed); a parses again and evicts b */
    asset_handle_release(load_ok(fx->s, b, NULL));
    assert_int_equal(tu_counter_parses(&fx->c), 2);
    asset_handle_release(load_ok(fx->s, a, NULL));
    assert_int_equal(tu_counter_parses(&fx->c), 3);
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.bytes_cached, 100 + json_bytes);
    assert_int_equal(st.cache_evictions, 2);
    asset_handle_release(ha);
    free(a);
    free(b);
}

static void test_set_cache_budget_works_for_the_builtin_loaders_by_name(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(asset_mem_put(fx->s, "j.json", "{\"a\": [1, 2, 3]}", 16), ASSET_OK);
    assert_int_equal(asset_mem_put(fx->s, "raw.bin", "0123456789", 10), ASSET_OK);
    asset_handle_release(load_ok(fx->s, "mem://j.json", NULL));
    asset_handle_release(load_ok(fx->s, "mem://raw.bin", NULL));
    asset_stats_t st;
    asset_server_stats(fx->s, &st);
    uint64_t before = st.bytes_cached;
    assert_int_equal(asset_server_set_cache_budget(fx->s, "json", 1), ASSET_OK);
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.cache_evictions, 1);
    uint64_t json_bytes = before - st.bytes_cached;
    assert_true(json_bytes > 1);
    /* too large for the new budget: loaded, parsed again, not cached */
    asset_handle_release(load_ok(fx->s, "mem://j.json", NULL));
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.bytes_cached, before - json_bytes);
    assert_int_equal(asset_server_set_cache_budget(fx->s, "bytes", 1), ASSET_OK);
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.bytes_cached, 0);
    assert_int_equal(st.cache_evictions, 2);
    /* 0 restores the server's budget (256 MiB): json is cached again */
    assert_int_equal(asset_server_set_cache_budget(fx->s, "json", 0), ASSET_OK);
    asset_handle_release(load_ok(fx->s, "mem://j.json", NULL));
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.bytes_cached, json_bytes);
}

static void test_set_cache_budget_refuses_unknown_loaders_and_bad_arguments(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(asset_server_set_cache_budget(fx->s, "png", 10), ASSET_E_NO_LOADER);
    assert_int_equal(asset_server_set_cache_budget(fx->s, "", 10), ASSET_E_INVALID);
    assert_int_equal(asset_server_set_cache_budget(fx->s, NULL, 10), ASSET_E_INVALID);
    assert_int_equal(asset_server_set_cache_budget(NULL, "json", 10), ASSET_E_INVALID);
}

/* A loader whose value costs what its bytes say (a decimal number). */
static asset_status_t cost_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    unsigned long long n = strtoull((const char *)asset_parse_data(p), NULL, 10);
    asset_parse_set_value(p, asset_alloc(1), n > SIZE_MAX ? SIZE_MAX : (size_t)n);
    return ASSET_OK;
}

/* Two loaders' caches under budgets of SIZE_MAX, each holding a value that costs
 * SIZE_MAX - 600: stats.bytes_cached, their sum, wrapped (64-bit size_t). */
static void test_bytes_cached_saturates_over_the_loaders(void **state) {
    fixture_t *fx = *state;
    static const char *const s1[] = {".c1", NULL}, *const s2[] = {".c2", NULL};
    asset_loader_t l1 = {ASSET_LOADER_ABI, "cost1", s1, NULL, cost_parse, NULL, NULL, 0, NULL};
    asset_loader_t l2 = l1;
    l2.name = "cost2";
    l2.suffixes = s2;
    assert_int_equal(asset_server_register_loader(fx->s, &l1, NULL, SIZE_MAX), ASSET_OK);
    assert_int_equal(asset_server_register_loader(fx->s, &l2, NULL, SIZE_MAX), ASSET_OK);
    char num[32];
    snprintf(num, sizeof num, "%zu", SIZE_MAX - 600);
    assert_int_equal(asset_mem_put(fx->s, "a.c1", num, strlen(num)), ASSET_OK);
    assert_int_equal(asset_mem_put(fx->s, "b.c2", num, strlen(num)), ASSET_OK);
    asset_handle_t *a = load_ok(fx->s, "mem://a.c1", NULL);
    assert_int_equal(asset_handle_size(a), SIZE_MAX - 600);
    asset_handle_release(a);
    asset_handle_release(load_ok(fx->s, "mem://b.c2", NULL));
    asset_stats_t st;
    asset_server_stats(fx->s, &st);
    uint64_t one = SIZE_MAX - 600, want = one > UINT64_MAX - one ? UINT64_MAX : 2 * one;
    if (st.bytes_cached != want)
        fail_msg("bytes_cached %llu, not %llu", (unsigned long long)st.bytes_cached,
                 (unsigned long long)want);
}

/* The source said the key is gone: asset_mem_remove() left the removed value's entry in
 * its loader's cache, charged against the budget (stats.bytes_cached) until the LRU
 * evicted it; a put that replaced the key left the old version's entry too, which no
 * load can be served again (every put's version is new). */
static void test_a_removed_or_replaced_mem_key_leaves_the_caches(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(asset_mem_put(fx->s, "gone.dat", "0123456789", 10), ASSET_OK);
    assert_int_equal(asset_mem_put(fx->s, "kept.dat", "abc", 3), ASSET_OK);
    asset_handle_t *held = load_ok(fx->s, "mem://gone.dat", NULL);
    asset_handle_release(load_ok(fx->s, "mem://kept.dat", NULL));
    asset_stats_t st;
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.bytes_cached, 13);
    assert_int_equal(asset_mem_remove(fx->s, "gone.dat"), ASSET_OK);
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.bytes_cached, 3);
    tu_expect_bytes(held, "0123456789", 10); /* a handle's value stays valid */
    asset_handle_release(held);
    assert_int_equal(asset_mem_put(fx->s, "kept.dat", "abcdefgh", 8), ASSET_OK);
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.bytes_cached, 0);
    asset_handle_t *h = load_ok(fx->s, "mem://kept.dat", NULL);
    tu_expect_bytes(h, "abcdefgh", 8);
    asset_handle_release(h);
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.bytes_cached, 8);
}

/* A file deleted from disk: the load that found it gone (E_NOT_FOUND) left its old
 * value's entry cached and charged; the source said the file is gone, so it goes. */
static void test_a_file_found_gone_leaves_the_cache(void **state) {
    fixture_t *fx = *state;
    char *p = tu_write_pattern(fx->dir, "del.dat", 100);
    char *u = tu_file_uri(p);
    asset_handle_release(load_ok(fx->s, u, NULL));
    asset_stats_t st;
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.bytes_cached, 100);
    assert_int_equal(tu_os_unlink(p), 0);
    asset_handle_t *h = asset_server_load(fx->s, u, NULL);
    assert_int_equal(tu_wait(h), ASSET_E_NOT_FOUND);
    asset_handle_release(h);
    asset_server_stats(fx->s, &st);
    assert_int_equal(st.bytes_cached, 0);
    free(p);
    free(u);
}

/* ---- the hash map under every cache and the in-flight index (map.c) ---- */

/* Keys that differ only in their last byte, in their first, or by length, as URIs of
 * one folder do: every one is found, duplicates are found through get_next, removal
 * takes exactly one, and the chains stay short (a hash that ignored some bytes would
 * pile these keys into a few buckets). */
static void test_map_finds_every_key_and_spreads_similar_ones(void **state) {
    (void)state;
    enum { N = 30000 };
    asset__map_t m;
    asset__map_init(&m);
    asset__map_node_t *nodes = calloc(N + 1, sizeof *nodes);
    char **keys = calloc(N, sizeof *keys);
    for (int i = 0; i < N; i++) {
        char k[160];
        switch (i % 3) {
        case 0: /* a long common prefix, the difference at the end */
            snprintf(k, sizeof k, "file:///home/user/game/assets/textures/tile%05d", i);
            break;
        case 1: /* the difference first */ snprintf(k, sizeof k, "%05d/pkg://game/a.png", i); break;
        default: /* every length from 1 to 100 */
            memset(k, 'a' + i % 26, 1 + (size_t)(i / 3) % 100);
            k[1 + (i / 3) % 100] = 0;
            snprintf(k + strlen(k), sizeof k - strlen(k), "#%d", i);
        }
        keys[i] = strdup(k);
        nodes[i].key = keys[i];
        assert_true(asset__map_put(&m, &nodes[i]));
    }
    nodes[N].key = keys[7]; /* a second node under one key */
    assert_true(asset__map_put(&m, &nodes[N]));
    for (int i = 0; i < N; i++) {
        asset__map_node_t *n = asset__map_get(&m, keys[i]);
        if (!n || strcmp(n->key, keys[i]) != 0) fail_msg("key %d (%s) not found", i, keys[i]);
    }
    assert_null(asset__map_get(&m, "file:///home/user/game/assets/textures/tile99999"));
    asset__map_node_t *a = asset__map_get(&m, keys[7]), *b = asset__map_get_next(&m, a);
    assert_non_null(b);
    assert_true((a == &nodes[7] && b == &nodes[N]) || (a == &nodes[N] && b == &nodes[7]));
    assert_null(asset__map_get_next(&m, b));
    size_t longest = 0, used = 0;
    for (size_t i = 0; i < m.nbuckets; i++) {
        size_t len = 0;
        for (asset__map_link_t *l = m.buckets[i]; l; l = l->next) len++;
        used += len > 0;
        if (len > longest) longest = len;
    }
    /* cmocka prints with the C library's printf: msvcrt's has no %zu */
    print_message("  %d keys in %u buckets: %u used, longest chain %u\n", N + 1,
                  (unsigned)m.nbuckets, (unsigned)used, (unsigned)longest);
    assert_true(longest <= 12);
    /* at most one node per bucket on average, and not fewer than half: a table grows
     * only when the count passes its size (a pending load pays for its bucket slots) */
    assert_true(m.nbuckets >= m.count && m.nbuckets < 2 * m.count);
    assert_true(used * 2 >= m.count); /* random placement uses about 60 % at this load */
    asset__map_remove(&m, &nodes[N]);
    assert_ptr_equal(asset__map_get(&m, keys[7]), &nodes[7]);
    assert_null(asset__map_get_next(&m, &nodes[7]));
    for (int i = 0; i < N; i++) {
        asset__map_remove(&m, &nodes[i]);
        free(keys[i]);
    }
    assert_int_equal(m.count, 0);
    asset__map_free(&m);
    free(keys);
    free(nodes);
}

/* asset__hash_n (the fast path's, its length known) is asset__hash; every byte counts,
 * the last 1 to 7 after the whole words included, and so does the length. */
static void test_hash_of_a_known_length_matches_and_every_byte_counts(void **state) {
    (void)state;
    char s[64];
    for (size_t n = 0; n < sizeof s; n++) {
        memset(s, 'a', n);
        s[n] = 0;
        uint64_t h = asset__hash(s);
        assert_true(asset__hash_n(s, n) == h);
        for (size_t i = 0; i < n; i++) { /* one byte changed, anywhere: another hash */
            s[i] = 'b';
            assert_true(asset__hash(s) != h);
            assert_true(asset__hash_n(s, n) == asset__hash(s));
            s[i] = 'a';
        }
        if (n) assert_true(asset__hash_n(s, n - 1) != h); /* a prefix */
    }
}

/* Map hashes are seeded, once per process (asset_server_create draws the seed): URIs
 * found to share one bucket under one seed, as a hostile manifest's made offline, do not
 * share one under another. Unseeded, 20,000 such URIs took 0.27 s to insert against 0.02
 * s for others, growing with the square of their number (a review). */
static void test_map_hashes_are_seeded_so_a_bucket_found_once_is_not_one_elsewhere(void **state) {
    (void)state;
    asset_server_destroy(tu_server(1));
    uint64_t drawn = asset__map_seed; /* no server lives now: the test may change it */
    assert_true(drawn != 0);
    enum { WANT = 64, MASK = 1023 };
    static char keys[WANT][32];
    int n = 0;
    asset__map_seed = 0x1234567;
    uint32_t bucket = asset__map_hash("mem://k0") & MASK;
    for (unsigned i = 0; n < WANT && i < 10000000; i++) {
        snprintf(keys[n], sizeof keys[n], "mem://k%u", i);
        if ((asset__map_hash(keys[n]) & MASK) == bucket) {
            assert_int_equal(asset__map_hash_n(keys[n], strlen(keys[n])) & MASK, bucket);
            n++;
        }
    }
    assert_int_equal(n, WANT);
    asset__map_seed = 0x89abcdef;
    static bool seen[MASK + 1];
    int distinct = 0;
    for (int i = 0; i < WANT; i++) {
        uint32_t b = asset__map_hash(keys[i]) & MASK;
        distinct += !seen[b];
        seen[b] = true;
    }
    asset__map_seed = drawn;
    if (distinct < WANT / 2)
        fail_msg("64 URIs of one bucket spread over %d with another seed", distinct);
}

/* An inline-keyed map (the cache's): the key's bytes follow the link, no pointer to
 * them. Every key is found, the owner's word is never touched, removal takes exactly
 * the one node, and an emptied map stays inline-keyed. */
typedef struct inline_node {
    asset__map_link_t link; /* last and only: the key follows */
} inline_node_t;

static void test_inline_keyed_map_finds_keys_after_the_link(void **state) {
    (void)state;
    enum { N = 3000 };
    asset__map_t m;
    asset__map_init_inline(&m);
    inline_node_t *nodes[N];
    for (int i = 0; i < N; i++) {
        char k[64];
        snprintf(k, sizeof k, "pkg://small/f%05d.bin", i);
        size_t kl = strlen(k) + 1;
        nodes[i] = malloc(sizeof(inline_node_t) + kl);
        assert_non_null(nodes[i]);
        memcpy(nodes[i] + 1, k, kl);
        nodes[i]->link.aux = 0xA5A50000u | (unsigned)i;
        assert_true(asset__map_link_put(&m, &nodes[i]->link));
    }
    if (sizeof(void *) == 8) assert_int_equal(sizeof(asset__map_link_t), 16);
    for (int i = 0; i < N; i++) {
        char k[64];
        snprintf(k, sizeof k, "pkg://small/f%05d.bin", i);
        asset__map_link_t *l = asset__map_find(&m, k);
        if (l != &nodes[i]->link)
            fail_msg("key %s found at %p, not %p", k, (void *)l, (void *)nodes[i]);
        assert_string_equal(asset__map_key(&m, l), k);
        assert_int_equal(l->aux, 0xA5A50000u | (unsigned)i);
    }
    assert_null(asset__map_find(&m, "pkg://small/f99999.bin"));
    assert_null(asset__map_find(&m, "pkg://small/f00001.bi")); /* a prefix is not the key */
    asset__map_link_remove(&m, &nodes[1]->link);
    assert_null(asset__map_find(&m, "pkg://small/f00001.bin"));
    assert_ptr_equal(asset__map_find(&m, "pkg://small/f00002.bin"), &nodes[2]->link);
    for (int i = 0; i < N; i++) {
        if (i != 1) asset__map_link_remove(&m, &nodes[i]->link);
        free(nodes[i]);
    }
    assert_int_equal(m.count, 0);
    assert_true(m.inline_keys); /* the emptied map gave its table back, not its kind */
    asset__map_free(&m);
    assert_true(m.inline_keys);
}

/* ------------------------------------------------------------------------ */
/* Values that hold handles of their server (free_value releases them)      */
/* ------------------------------------------------------------------------ */

/* A loader whose value holds a handle of the same server, released by its free_value:
 * every path that frees a value (a handle release, an eviction by a worker's insert,
 * a budget change, clear_caches, invalidate, a mem:// replace, a reload, destroy) may
 * run it with the server's lock held. A self-deadlock is caught by the watchdog. */
typedef struct holder {
    asset_handle_t *inner;
    _Atomic int frees;
} holder_t;

typedef struct held {
    asset_handle_t *h;
} held_t;

static asset_status_t holder_parse(void *ctx, asset_parse_t *p) {
    holder_t *c = ctx;
    held_t *v = asset_alloc(sizeof *v);
    if (!v) return ASSET_E_NO_MEMORY;
    v->h = asset_handle_retain(c->inner);
    asset_parse_set_value(p, v, 64);
    return ASSET_OK;
}

static void holder_free(void *ctx, void *value) {
    holder_t *c = ctx;
    held_t *v = value;
    asset_handle_release(v->h); /* the server's lock may be held here */
    atomic_fetch_add(&c->frees, 1);
    asset_free(v);
}

static const char *const holder_suffixes[] = {".hold", NULL};

typedef struct holder_fx {
    asset_server_t *s;
    holder_t c;
} holder_fx_t;

static holder_fx_t *holder_setup(size_t budget) {
    tu_os_watchdog(120); /* a self-deadlock fails the test instead of hanging it */
    holder_fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->s = tu_server(2);
    asset_loader_t ld = {.abi = ASSET_LOADER_ABI,
                         .name = "holder",
                         .suffixes = holder_suffixes,
                         .parse = holder_parse,
                         .free_value = holder_free};
    assert_int_equal(asset_server_register_loader(fx->s, &ld, &fx->c, budget), ASSET_OK);
    assert_int_equal(asset_mem_put(fx->s, "inner.bin", "in", 2), ASSET_OK);
    assert_int_equal(asset_mem_put(fx->s, "a.hold", "a", 1), ASSET_OK);
    assert_int_equal(asset_mem_put(fx->s, "b.hold", "b", 1), ASSET_OK);
    fx->c.inner = tu_load_wait(fx->s, "mem://inner.bin", ASSET_OK);
    return fx;
}

/* The inner handle's references: the test's own plus one per live value. */
static unsigned holder_inner_refs(holder_fx_t *fx) {
    uv_mutex_lock(&fx->s->lock);
    unsigned n = (unsigned)fx->c.inner->refs;
    uv_mutex_unlock(&fx->s->lock);
    return n;
}

/* After the value went: one free, and after a flush the inner handle's reference is
 * back (released, at once or by that flush). */
static void holder_expect_freed(holder_fx_t *fx, int frees) {
    asset_server_flush(fx->s);
    assert_int_equal(atomic_load(&fx->c.frees), frees);
    assert_int_equal(holder_inner_refs(fx), 1);
}

static void holder_teardown(holder_fx_t *fx) {
    asset_handle_release(fx->c.inner);
    asset_server_destroy(fx->s);
    free(fx);
    tu_os_watchdog(0);
}

static void test_a_value_holding_a_handle_is_freed_by_clear_caches(void **state) {
    (void)state;
    holder_fx_t *fx = holder_setup(0);
    asset_handle_release(tu_load_wait(fx->s, "mem://a.hold", ASSET_OK));
    assert_int_equal(holder_inner_refs(fx), 2);
    asset_server_clear_caches(fx->s);
    holder_expect_freed(fx, 1);
    holder_teardown(fx);
}

static void test_a_value_holding_a_handle_is_freed_by_invalidate(void **state) {
    (void)state;
    holder_fx_t *fx = holder_setup(0);
    asset_handle_release(tu_load_wait(fx->s, "mem://a.hold", ASSET_OK));
    asset_server_invalidate(fx->s, "mem://a.hold");
    holder_expect_freed(fx, 1);
    holder_teardown(fx);
}

static void test_a_value_holding_a_handle_is_freed_by_a_budget_change(void **state) {
    (void)state;
    holder_fx_t *fx = holder_setup(0);
    asset_handle_release(tu_load_wait(fx->s, "mem://a.hold", ASSET_OK));
    assert_int_equal(asset_server_set_cache_budget(fx->s, "holder", 1), ASSET_OK);
    holder_expect_freed(fx, 1);
    holder_teardown(fx);
}

static void test_a_value_holding_a_handle_is_freed_by_a_mem_replace(void **state) {
    (void)state;
    holder_fx_t *fx = holder_setup(0);
    asset_handle_release(tu_load_wait(fx->s, "mem://a.hold", ASSET_OK));
    assert_int_equal(asset_mem_put(fx->s, "a.hold", "A", 1), ASSET_OK);
    holder_expect_freed(fx, 1);
    holder_teardown(fx);
}

static void test_a_value_holding_a_handle_is_freed_by_its_last_handle(void **state) {
    (void)state;
    holder_fx_t *fx = holder_setup(0);
    asset_load_options_t nc = {.no_cache = true};
    asset_handle_t *h = asset_server_load(fx->s, "mem://a.hold", &nc);
    assert_int_equal(tu_wait(h), ASSET_OK);
    asset_handle_release(h); /* not cached: the value goes with it */
    holder_expect_freed(fx, 1);
    holder_teardown(fx);
}

static void test_a_value_holding_a_handle_is_evicted_by_a_workers_insert(void **state) {
    (void)state;
    holder_fx_t *fx = holder_setup(100); /* room for one value of 64 */
    asset_handle_release(tu_load_wait(fx->s, "mem://a.hold", ASSET_OK));
    asset_handle_t *b = tu_load_wait(fx->s, "mem://b.hold", ASSET_OK); /* evicts a */
    asset_server_flush(fx->s);
    assert_int_equal(atomic_load(&fx->c.frees), 1);
    assert_int_equal(holder_inner_refs(fx), 2); /* b's */
    asset_handle_release(b);
    asset_server_clear_caches(fx->s);
    holder_expect_freed(fx, 2);
    holder_teardown(fx);
}

static void reloaded_count(asset_handle_t *h, void *user) {
    (void)h;
    (*(int *)user)++;
}

static void test_a_value_holding_a_handle_is_replaced_by_a_reload(void **state) {
    (void)state;
    holder_fx_t *fx = holder_setup(0);
    asset_handle_t *h = tu_load_wait(fx->s, "mem://a.hold", ASSET_OK);
    int reloads = 0;
    assert_true(asset_handle_on_reloaded(h, reloaded_count, &reloads) != 0);
    assert_int_equal(asset_mem_put(fx->s, "a.hold", "A", 1), ASSET_OK);
    asset_server_reload(fx->s, "mem://a.hold");
    while (!reloads) {
        asset_handle_wait(h, 10); /* its flushes deliver the reload */
        asset_server_flush(fx->s);
    }
    asset_server_flush(fx->s);
    assert_int_equal(atomic_load(&fx->c.frees), 1); /* the old value */
    assert_int_equal(holder_inner_refs(fx), 2);     /* the new one's */
    asset_handle_release(h);
    asset_server_clear_caches(fx->s);
    holder_expect_freed(fx, 2);
    holder_teardown(fx);
}

static void test_a_value_holding_a_handle_is_freed_by_destroy(void **state) {
    (void)state;
    holder_fx_t *fx = holder_setup(0);
    asset_handle_release(tu_load_wait(fx->s, "mem://a.hold", ASSET_OK)); /* cached */
    asset_handle_t *b = tu_load_wait(fx->s, "mem://b.hold", ASSET_OK);   /* held */
    (void)b;
    /* destroy frees both values and every handle, the inner one too: a free_value
     * that releases it must not touch a freed handle (ASan) nor hang */
    asset_server_destroy(fx->s);
    assert_int_equal(atomic_load(&fx->c.frees), 2);
    free(fx);
    tu_os_watchdog(0);
}

static _Atomic int gpu_tex_frees;

static asset_status_t gpu_tex_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    int *v = asset_alloc(sizeof *v);
    if (!v) return ASSET_E_NO_MEMORY;
    asset_parse_set_value(p, v, sizeof *v);
    return ASSET_OK;
}

static void gpu_tex_free(void *ctx, void *value) {
    (void)ctx;
    atomic_fetch_add(&gpu_tex_frees, 1);
    asset_free(value);
}

static const char *const gpu_tex_suffixes[] = {".tex", NULL};
static const char *const gpu_mat_suffixes[] = {".mat", NULL};

/* A GPU material holding its texture's handle, both loaders freeing on the flush thread:
 * the flush that frees the material frees the texture too (its handle released there),
 * as when the material's release was not deferred. */
static void test_a_flush_thread_value_holding_a_handle_frees_its_asset_in_that_flush(void **state) {
    (void)state;
    tu_os_watchdog(120);
    atomic_store(&gpu_tex_frees, 0);
    asset_server_t *s = tu_server(2);
    holder_t c = {0};
    asset_loader_t tex = {.abi = ASSET_LOADER_ABI,
                          .name = "gputex",
                          .suffixes = gpu_tex_suffixes,
                          .parse = gpu_tex_parse,
                          .free_value = gpu_tex_free,
                          .flags = ASSET_LOADER_FREE_ON_FLUSH_THREAD};
    asset_loader_t mat = {.abi = ASSET_LOADER_ABI,
                          .name = "gpumat",
                          .suffixes = gpu_mat_suffixes,
                          .parse = holder_parse,
                          .free_value = holder_free,
                          .flags = ASSET_LOADER_FREE_ON_FLUSH_THREAD};
    assert_int_equal(asset_server_register_loader(s, &tex, NULL, 0), ASSET_OK);
    assert_int_equal(asset_server_register_loader(s, &mat, &c, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "t.tex", "t", 1), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "m.mat", "m", 1), ASSET_OK);
    c.inner = tu_load_wait(s, "mem://t.tex", ASSET_OK);
    asset_handle_release(tu_load_wait(s, "mem://m.mat", ASSET_OK));
    asset_handle_release(c.inner); /* the material's reference is the handle's last */
    asset_server_clear_caches(s);
    asset_server_flush(s);
    assert_int_equal(atomic_load(&c.frees), 1);
    assert_int_equal(atomic_load(&gpu_tex_frees), 1);
    asset_server_destroy(s);
    tu_os_watchdog(0);
}

/* A value holding a batch of its server (a level that loads its assets as a group in its
 * parse), released by its free_value: as a handle's release, with the lock maybe held. */
static _Atomic int bholder_frees;

static asset_status_t bholder_parse(void *ctx, asset_parse_t *p) {
    asset_server_t *s = ctx;
    asset_batch_t **v = asset_alloc(sizeof *v);
    if (!v) return ASSET_E_NO_MEMORY;
    const char *uris[] = {"mem://inner.bin"};
    *v = asset_server_load_group(s, uris, 1, NULL);
    asset_parse_set_value(p, v, 64);
    return ASSET_OK;
}

static void bholder_free(void *ctx, void *value) {
    (void)ctx;
    asset_batch_t **v = value;
    asset_batch_release(*v); /* the server's lock may be held here */
    atomic_fetch_add(&bholder_frees, 1);
    asset_free(v);
}

static const char *const bholder_suffixes[] = {".bhold", NULL};

static asset_server_t *bholder_server(void) {
    tu_os_watchdog(120);
    atomic_store(&bholder_frees, 0);
    asset_server_t *s = tu_server(2);
    asset_loader_t ld = {.abi = ASSET_LOADER_ABI,
                         .name = "bholder",
                         .suffixes = bholder_suffixes,
                         .parse = bholder_parse,
                         .free_value = bholder_free};
    assert_int_equal(asset_server_register_loader(s, &ld, s, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "inner.bin", "in", 2), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "a.bhold", "a", 1), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "mem://a.bhold", ASSET_OK);
    asset_batch_t *const *v = asset_handle_value(h);
    assert_int_equal(asset_batch_wait(*v, 60000), ASSET_OK);
    asset_handle_release(h); /* cached */
    return s;
}

static void test_a_value_holding_a_batch_is_freed_by_clear_caches(void **state) {
    (void)state;
    asset_server_t *s = bholder_server();
    asset_server_clear_caches(s);
    asset_server_flush(s);
    assert_int_equal(atomic_load(&bholder_frees), 1);
    uv_mutex_lock(&s->lock);
    bool gone = s->batches == NULL; /* the value's reference was the batch's last */
    uv_mutex_unlock(&s->lock);
    assert_true(gone);
    asset_server_destroy(s);
    tu_os_watchdog(0);
}

/* A value of one server holding a handle of another: its free, on a thread that is
 * neither server's flush thread, records the release for the other server's next flush,
 * which must be told (config.wake), as the header says: an event-driven host that
 * flushes only when woken kept the handle, and its value, until an unrelated load. */
typedef struct wake_watch {
    asset_server_t *s; /* set once the wakes that count are those of a recorded release */
    uv_mutex_t mu;
    uv_cond_t cond;
    int wakes;
} wake_watch_t;

static void watch_wake(void *user) {
    wake_watch_t *w = user;
    uv_mutex_lock(&w->mu);
    if (w->s && atomic_load(&w->s->later_handles)) w->wakes++; /* a release waits */
    uv_cond_broadcast(&w->cond);
    uv_mutex_unlock(&w->mu);
}

static void release_on_a_thread(void *h) { asset_handle_release(h); }

/* Two servers: `other` (one worker, its wakes watched) holds "inner.bin", a handle of
 * which the value of s's "a.hold" (loaded, h) holds. false: the single-threaded web
 * build (no worker, no thread to release on), set up nothing. */
typedef struct cross {
    wake_watch_t w;
    asset_server_t *other, *s;
    holder_t c;
    asset_handle_t *h;
} cross_t;

static bool cross_setup(cross_t *x) {
    tu_os_watchdog(120);
    memset(x, 0, sizeof *x);
    uv_mutex_init(&x->w.mu);
    uv_cond_init(&x->w.cond);
    asset_server_config_t cfg = {.max_workers = 1, .wake = watch_wake, .user = &x->w};
    x->other = asset_server_create(&cfg);
    assert_non_null(x->other);
    if (x->other->nworkers == 0) {
        asset_server_destroy(x->other);
        uv_cond_destroy(&x->w.cond);
        uv_mutex_destroy(&x->w.mu);
        tu_os_watchdog(0);
        return false;
    }
    assert_int_equal(asset_mem_put(x->other, "inner.bin", "in", 2), ASSET_OK);
    x->c.inner = tu_load_wait(x->other, "mem://inner.bin", ASSET_OK);
    x->s = tu_server(1);
    asset_loader_t ld = {.abi = ASSET_LOADER_ABI,
                         .name = "holder",
                         .suffixes = holder_suffixes,
                         .parse = holder_parse,
                         .free_value = holder_free};
    assert_int_equal(asset_server_register_loader(x->s, &ld, &x->c, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(x->s, "a.hold", "a", 1), ASSET_OK);
    asset_load_options_t nc = {.no_cache = true};
    x->h = asset_server_load(x->s, "mem://a.hold", &nc);
    assert_int_equal(tu_wait(x->h), ASSET_OK);
    uv_mutex_lock(&x->other->lock);
    assert_int_equal(x->c.inner->refs, 2); /* the test's and the value's */
    uv_mutex_unlock(&x->other->lock);
    uv_mutex_lock(&x->w.mu);
    x->w.s = x->other; /* the wakes that count from now: those of a recorded release */
    uv_mutex_unlock(&x->w.mu);
    return true;
}

/* The value was freed: `other` was told (config.wake) within 10 s (at once, or by a
 * worker soon after, with the fixes), and its flush does the release. */
static void cross_check(cross_t *x) {
    uint64_t deadline = uv_hrtime() + 10000000000ull;
    uv_mutex_lock(&x->w.mu);
    for (uint64_t now = uv_hrtime(); !x->w.wakes && now < deadline; now = uv_hrtime())
        (void)uv_cond_timedwait(&x->w.cond, &x->w.mu, deadline - now);
    int wakes = x->w.wakes;
    x->w.s = NULL;
    uv_mutex_unlock(&x->w.mu);
    assert_int_equal(atomic_load(&x->c.frees), 1);
    assert_true(wakes >= 1);      /* was 0: `other` never heard of its handle's release */
    asset_server_flush(x->other); /* which does it */
    uv_mutex_lock(&x->other->lock);
    assert_int_equal(x->c.inner->refs, 1);
    uv_mutex_unlock(&x->other->lock);
}

static void cross_teardown(cross_t *x) {
    asset_server_destroy(x->s);
    asset_handle_release(x->c.inner);
    asset_server_destroy(x->other);
    uv_cond_destroy(&x->w.cond);
    uv_mutex_destroy(&x->w.mu);
    tu_os_watchdog(0);
}

static void test_a_value_releasing_another_servers_handle_wakes_that_server(void **state) {
    (void)state;
    cross_t x;
    if (!cross_setup(&x)) skip();
    uv_thread_t t; /* the flush thread of neither server */
    assert_int_equal(uv_thread_create(&t, release_on_a_thread, x.h), 0);
    uv_thread_join(&t);
    cross_check(&x);
    cross_teardown(&x);
}

/* The same release, recorded while the other server's only worker is between its last
 * look at the flag and its sleep (asset__pool_sleep_hook holds it there, with that
 * server's lock): asset__pool_wake_later's signal found nobody asleep, and the worker
 * then slept through it: the host was told nothing until an unrelated event. */
static asset_handle_t *window_release; /* released by the hook's thread */
static asset_server_t *window_server;  /* whose worker: the other one's may pass too */
static atomic_int window_hooked;

static void window_hook(asset_server_t *s) {
    if (s != window_server || atomic_exchange(&window_hooked, 1)) return;
    uv_thread_t t; /* not this worker: it holds its server's lock, which the release tries */
    if (uv_thread_create(&t, release_on_a_thread, window_release) == 0) /* else: frees 0 */
        uv_thread_join(&t);
}

static asset_status_t kick_task(asset_task_t *t, void *arg) {
    (void)t;
    (void)arg;
    return ASSET_OK;
}

static void test_a_release_recorded_as_the_worker_goes_to_sleep_wakes_the_host(void **state) {
    (void)state;
    cross_t x;
    if (!cross_setup(&x)) skip();
    window_release = x.h;
    window_server = x.other;
    atomic_store(&window_hooked, 0);
    static const struct asset__pool_hook hook = {.fn = window_hook};
    atomic_store(&asset__pool_sleep_hook, &hook);
    /* a task for the worker (a mem:// load may not need one): once it has run it, the
     * worker goes back to sleep, through the hook */
    asset_handle_t *kick = asset_server_spawn(x.other, kick_task, NULL, NULL, NULL);
    assert_non_null(kick);
    cross_check(&x); /* was: no wake, the worker slept with the flag set */
    atomic_store(&asset__pool_sleep_hook, NULL);
    assert_int_equal(atomic_load(&window_hooked), 1);
    asset_handle_release(kick);
    cross_teardown(&x);
}

static void test_a_value_holding_a_batch_is_freed_by_destroy(void **state) {
    (void)state;
    asset_server_t *s = bholder_server();
    asset_server_destroy(s); /* frees the batch and the value: in either order */
    assert_int_equal(atomic_load(&bholder_frees), 1);
    tu_os_watchdog(0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_never_exceeded_over_10000_random_inserts),
        cmocka_unit_test(test_a_cache_that_shrinks_gives_its_table_back),
        cmocka_unit_test(test_a_fresh_values_entry_goes_in_its_records_room),
        cmocka_unit_test(test_an_entry_charges_its_value_and_every_label),
        cmocka_unit_test(test_a_records_room_moves_with_its_extra_part),
        cmocka_unit_test(test_map_finds_every_key_and_spreads_similar_ones),
        cmocka_unit_test(test_inline_keyed_map_finds_keys_after_the_link),
        cmocka_unit_test(test_hash_of_a_known_length_matches_and_every_byte_counts),
        cmocka_unit_test(test_map_hashes_are_seeded_so_a_bucket_found_once_is_not_one_elsewhere),
        cmocka_unit_test(test_value_larger_than_budget_is_not_cached),
        cmocka_unit_test(test_new_version_replaces_old_entry),
        cmocka_unit_test(test_entry_keeps_version_digest_and_age_in_its_block),
        cmocka_unit_test(test_eviction_follows_least_recent_use),
        cmocka_unit_test(test_a_cost_0_entry_takes_no_budget_and_is_evicted_in_lru_order),
        cmocka_unit_test(test_an_entry_age_does_not_wrap_after_104_days),
        cmocka_unit_test(test_an_entry_put_after_the_time_asked_reads_age_zero),
        cmocka_unit_test(test_a_time_before_the_caches_epoch_reads_age_zero),
        cmocka_unit_test(test_remove_and_clear_release_only_the_cache_reference),
        cmocka_unit_test(test_costs_near_size_max_never_wrap_the_byte_count),
        cmocka_unit_test_setup_teardown(test_evicted_value_stays_valid_while_a_handle_holds_it,
                                        setup, teardown),
        cmocka_unit_test(test_values_freed_exactly_once_at_destroy),
        cmocka_unit_test_setup_teardown(test_invalidate_forces_a_reparse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalidate_of_a_labeled_uri_drops_its_assets_entry,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_an_immutable_source_that_sets_a_version_is_served_from_the_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear_caches_keeps_held_values_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_cache_skips_lookup_and_insert, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_not_modified_revalidation_caches_an_evicted_value_again, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_load_after_invalidate_does_not_join_a_revalidation_of_the_old_value, setup,
            teardown),
        cmocka_unit_test(test_invalidate_tells_a_read_in_flight_its_bytes_are_old),
        cmocka_unit_test(test_a_read_older_than_a_reload_does_not_replace_its_cache_entry),
        cmocka_unit_test(test_a_revalidation_puts_back_no_entry_that_clear_caches_removed),
        cmocka_unit_test(test_clear_caches_tells_every_read_in_flight_its_bytes_are_old),
        cmocka_unit_test(test_a_load_after_a_reload_joins_no_read_that_began_before),
        cmocka_unit_test(test_a_joined_revalidation_is_one_cache_hit),
        cmocka_unit_test_setup_teardown(test_stats_count_hits_misses_evictions_and_bytes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_set_cache_budget_evicts_down_to_the_new_budget_at_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_cache_budget_works_for_the_builtin_loaders_by_name,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_set_cache_budget_refuses_unknown_loaders_and_bad_arguments, setup, teardown),
        cmocka_unit_test(
            test_the_counts_stay_exact_under_loads_budget_changes_and_clears_from_many_threads),
        cmocka_unit_test_setup_teardown(test_bytes_cached_saturates_over_the_loaders, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_removed_or_replaced_mem_key_leaves_the_caches, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_file_found_gone_leaves_the_cache, setup, teardown),
        cmocka_unit_test(test_a_value_holding_a_handle_is_freed_by_clear_caches),
        cmocka_unit_test(test_a_value_holding_a_handle_is_freed_by_invalidate),
        cmocka_unit_test(test_a_value_holding_a_handle_is_freed_by_a_budget_change),
        cmocka_unit_test(test_a_value_holding_a_handle_is_freed_by_a_mem_replace),
        cmocka_unit_test(test_a_value_holding_a_handle_is_freed_by_its_last_handle),
        cmocka_unit_test(test_a_value_holding_a_handle_is_evicted_by_a_workers_insert),
        cmocka_unit_test(test_a_value_holding_a_handle_is_replaced_by_a_reload),
        cmocka_unit_test(test_a_value_holding_a_handle_is_freed_by_destroy),
        cmocka_unit_test(test_a_flush_thread_value_holding_a_handle_frees_its_asset_in_that_flush),
        cmocka_unit_test(test_a_value_holding_a_batch_is_freed_by_clear_caches),
        cmocka_unit_test(test_a_value_holding_a_batch_is_freed_by_destroy),
        cmocka_unit_test(test_a_value_releasing_another_servers_handle_wakes_that_server),
        cmocka_unit_test(test_a_release_recorded_as_the_worker_goes_to_sleep_wakes_the_host),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}

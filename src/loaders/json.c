/* loaders/json.c - the built-in "json" loader: cJSON_ParseWithLengthOpts, errors with
 * line and column, value cost estimated from the tree. Nesting deeper than
 * config.json_max_depth (ASSET__JSON_MAX_DEPTH) is refused before cJSON runs (cJSON recurses once
 * per level, and its own limit, CJSON_NESTING_LIMIT, needs about 100 KiB of stack); this file tells
 * that case, trailing garbage, a cut-off document and stray NUL bytes apart so the message says
 * which one it was. A UTF-8 byte order mark is skipped (editors on Windows add one). The bytes must
 * be valid UTF-8 (cJSON copies them through unchecked) unless config.json_allow_invalid_utf8; the
 * loader's ctx is the server. */
#include "../internal.h"

#include <cjson/cJSON.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(CJSON_NESTING_LIMIT >= ASSET__JSON_DEPTH_CEILING,
               "config.json_max_depth may be as deep as ASSET__JSON_DEPTH_CEILING");

static size_t json_cost(const cJSON *n) {
    size_t c = 0;
    for (; n; n = n->next) {
        c += sizeof *n;
        if (n->string) c += strlen(n->string) + 1;
        if (n->valuestring) c += strlen(n->valuestring) + 1;
        if (n->child) c += json_cost(n->child);
    }
    return c;
}

/* 1-based line and column (in bytes) of `at` in text. */
static void position(const char *text, const char *at, size_t *line, size_t *col) {
    *line = 1;
    *col = 1;
    for (const char *c = text; c < at; c++) {
        if (*c == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* The '"' that closes the string opened at `open` (a backslash escaping the next byte),
 * or end when none does before it: how cJSON reads strings, up to where it stops. */
static const char *string_end(const char *open, const char *end) {
    const char *c = open + 1;
    for (; c < end && *c != '"'; c++)
        if (*c == '\\' && c + 1 < end) c++;
    return c;
}

/* The bracket at which more than max arrays and objects are open (strings skipped), or
 * NULL: cJSON descends no deeper than that for any text. */
static const char *deeper_than(const char *text, size_t n, size_t max) {
    size_t depth = 0;
    for (const char *c = text, *end = text + n; c < end; c++) {
        if (*c == '"') {
            if ((c = string_end(c, end)) == end) break;
        } else if (*c == '[' || *c == '{') {
            if (++depth > max) return c;
        } else if ((*c == ']' || *c == '}') && depth) {
            depth--;
        }
    }
    return NULL;
}

/* Whether an object's key is expected at `at` (strings skipped, string_end): the byte
 * before it, whitespace skipped, is an object's '{' or a ',' inside one. The document is
 * no deeper than ASSET__JSON_DEPTH_CEILING here (deeper_than ran first). */
static bool key_expected(const char *text, const char *at) {
    uint8_t object[ASSET__JSON_DEPTH_CEILING / 8 + 1]; /* a bit per open bracket: '{' */
    size_t depth = 0;
    char last = 0; /* the last byte outside strings and whitespace */
    for (const char *c = text; c < at; c++) {
        if ((unsigned char)*c <= 32) continue; /* whitespace to cJSON */
        last = *c;
        if (*c == '"') {
            if ((c = string_end(c, at)) == at) return false; /* at is inside a string */
        } else if (*c == '[' || *c == '{') {
            if (depth >= (size_t)ASSET__JSON_DEPTH_CEILING) return false;
            if (*c == '{')
                object[depth / 8] |= (uint8_t)(1u << depth % 8);
            else
                object[depth / 8] &= (uint8_t) ~(1u << depth % 8);
            depth++;
        } else if ((*c == ']' || *c == '}') && depth) {
            depth--;
        }
    }
    if (!depth || (last != '{' && last != ',')) return false;
    return (object[(depth - 1) / 8] >> (depth - 1) % 8) & 1u;
}

/* Where cJSON's error at `end` really is: a key that is not a string is placed one byte
 * past its first (cJSON's string reader fails past the byte it refused), so "{x}" said
 * column 3 and "{\"a\":1,}" (a trailing comma) "unexpected end of document". */
static const char *error_at(const char *text, const char *end) {
    if (end <= text) return end;
    const char *q = end - 1;
    return (unsigned char)*q > 32 && *q != '"' && key_expected(text, q) ? q : end;
}

/* Up to 24 printable characters from `at`, for the message. */
static void excerpt(const char *at, const char *end, char *out, size_t cap) {
    size_t n = 0;
    for (; at < end && n + 1 < cap && n < 24 && *at != '\n' && *at != '\r'; at++)
        out[n++] = (*at >= 0x20 && *at < 0x7f) ? *at : '?';
    out[n] = 0;
}

/* Offset of the first byte that does not start a well-formed UTF-8 sequence (Unicode
 * Table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF), or n; *why
 * then says what is wrong. Linear, one pass; ASCII runs go 8 bytes at a time. */
static size_t utf8_invalid_at(const uint8_t *s, size_t n, const char **why) {
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080u)) {
                i += 8;
                continue;
            }
        }
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        /* lead byte: sequence length, and the range of the second byte that rules out
         * overlongs (E0, F0), surrogates (ED) and code points above U+10FFFF (F4) */
        size_t len;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c < 0xC0) {
            *why = "continuation byte without a lead byte";
            return i;
        } else if (c < 0xC2) {
            *why = "overlong encoding";
            return i;
        } else if (c < 0xE0) {
            len = 2;
        } else if (c < 0xF0) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c < 0xF5) {
            len = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            *why = c < 0xF8 ? "code point above U+10FFFF" : "byte never occurs in UTF-8";
            return i;
        }
        for (size_t k = 1; k < len; k++) { /* all continuation bytes there? */
            if (i + k >= n || (s[i + k] & 0xC0) != 0x80) {
                *why = "truncated sequence";
                return i;
            }
        }
        if (s[i + 1] < lo) {
            *why = "overlong encoding";
            return i;
        }
        if (s[i + 1] > hi) {
            *why = c == 0xED ? "UTF-16 surrogate (U+D800..U+DFFF)" : "code point above U+10FFFF";
            return i;
        }
        i += len;
    }
    return n;
}

/* The first escape of a NUL (a backslash, then "u0000") in text, or NULL. cJSON
 * decodes it to a NUL, which ends its C string: the rest of the string would be
 * dropped without a word (a manifest entry "x" + that escape + ".png" loaded "x"). A
 * backslash and the byte after it are one escape, so an escaped backslash followed by
 * "u0000" is text. */
static const char *escaped_nul(const char *text, size_t n) {
    const char *end = text + n, *c = text;
    while (c < end && (c = memchr(c, '\\', (size_t)(end - c)))) {
        if (end - c >= 6 && c[1] == 'u' && !memcmp(c + 2, "0000", 4)) return c;
        c += 2;
    }
    return NULL;
}

/* ---- numbers of more than 63 characters ----
 * cJSON 1.7.15, which the Windows and web builds compile (Debian's is patched), copies a
 * number into a 64-byte buffer: a longer one (a 100-digit integer, a fraction with many
 * zeros) failed a valid document, "invalid JSON at line 1, column 66, near '000...'".
 * When a parse fails, a copy with each such number written shorter (its double, "%.17g",
 * which reads back as the same value) is parsed; an error is still reported where it
 * is in the document as given. */
#define CJSON_NUMBER_MAX 63

typedef struct shortened {
    size_t at, len;           /* the number in the document */
    size_t copy_at, copy_len; /* what stands for it in the copy */
} shortened_t;

static bool number_char(char c) {
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* The number tok (len bytes) written shorter into out (32 bytes); 0: it is no number
 * strtod reads whole (left as it is, to fail as before). */
static size_t short_number(const char *tok, size_t len, char *out, bool *oom) {
    char *buf = asset_alloc(len + 1);
    if (!buf) {
        *oom = true;
        return 0;
    }
    /* strtod and printf use the locale's decimal point, as cJSON does */
    const struct lconv *lc = localeconv();
    char dp = lc && lc->decimal_point && lc->decimal_point[0] ? lc->decimal_point[0] : '.';
    for (size_t i = 0; i < len; i++) buf[i] = tok[i] == '.' ? dp : tok[i];
    buf[len] = 0;
    char *endp = NULL;
    double d = strtod(buf, &endp);
    bool whole = endp == buf + len;
    asset_free(buf);
    if (!whole) return 0;
    if (!isfinite(d)) /* past DBL_MAX: cJSON reads it as infinity too */
        return (size_t)snprintf(out, 32, "%s", d < 0 ? "-1e999" : "1e999");
    int k = snprintf(out, 32, "%.17g", d);
    if (k <= 0 || k >= 32) return 0;
    for (int i = 0; i < k; i++)
        if (out[i] == dp) out[i] = '.';
    return (size_t)k;
}

/* A copy of text (n bytes) with its numbers of more than 63 characters written shorter,
 * NUL-terminated (*cn bytes), and where they are (*sh, *nsh); NULL when there is none
 * (or *oom: out of memory). */
static char *shorten_numbers(const char *text, size_t n, size_t *cn, shortened_t **sh, size_t *nsh,
                             bool *oom) {
    size_t count = 0;
    for (int pass = 0; pass < 2; pass++) {
        char *copy = NULL;
        shortened_t *list = NULL;
        if (pass) {
            copy = asset_alloc(n + 1); /* a number only ever gets shorter */
            list = asset__calloc(count, sizeof *list);
            if (!copy || !list) {
                asset_free(copy);
                asset_free(list);
                *oom = true;
                return NULL;
            }
        }
        size_t w = 0, k = 0;
        bool in_str = false;
        for (size_t i = 0; i < n;) {
            char c = text[i];
            size_t len = 1;
            if (in_str) {
                if (c == '\\' && i + 1 < n)
                    len = 2;
                else if (c == '"')
                    in_str = false;
            } else if (c == '"') {
                in_str = true;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                while (i + len < n && number_char(text[i + len])) len++;
                if (len > CJSON_NUMBER_MAX && !pass) count++;
                if (len > CJSON_NUMBER_MAX && pass) {
                    char out[32];
                    size_t m = short_number(text + i, len, out, oom);
                    if (*oom) {
                        asset_free(copy);
                        asset_free(list);
                        return NULL;
                    }
                    if (m) {
                        list[k++] = (shortened_t){i, len, w, m};
                        memcpy(copy + w, out, m);
                        w += m;
                        i += len;
                        continue;
                    }
                }
            }
            if (pass) memcpy(copy + w, text + i, len);
            w += len;
            i += len;
        }
        if (!pass && !count) return NULL;
        if (pass) {
            copy[w] = 0;
            *cn = w;
            *sh = list;
            *nsh = k;
            return copy;
        }
    }
    return NULL;
}

/* The offset in the document of offset off of the copy (a shortened number's start
 * for any offset inside it). */
static size_t document_offset(const shortened_t *sh, size_t nsh, size_t off) {
    size_t shift = 0; /* document minus copy, after the numbers before off */
    for (size_t i = 0; i < nsh && off >= sh[i].copy_at; i++) {
        if (off < sh[i].copy_at + sh[i].copy_len) return sh[i].at;
        shift = sh[i].at + sh[i].len - (sh[i].copy_at + sh[i].copy_len);
    }
    return off + shift;
}

static asset_status_t json_parse(void *ctx, asset_parse_t *p) {
    const asset_server_t *s = ctx; /* NULL (fuzz_json): the defaults */
    const char *data = (const char *)asset_parse_data(p);
    size_t size = asset_parse_size(p);
    size_t bom = size >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3) ? 3 : 0;
    const char *text = data + bom; /* lines and columns count from here */
    size_t n = size - bom;
    if (!(s && s->cfg.json_allow_invalid_utf8)) {
        const char *why = NULL;
        size_t bad = utf8_invalid_at((const uint8_t *)data, size, &why), line, col;
        if (bad < size) { /* the offset is into the bytes as stored, BOM included */
            position(text, data + bad, &line, &col);
            return asset_parse_fail(p, ASSET_E_PARSE,
                                    "invalid UTF-8 at byte %zu (line %zu, column %zu): %s (0x%02X)",
                                    bad, line, col, why, (unsigned char)data[bad]);
        }
    }
    if (strspn(text, " \t\r\n") == n)
        return asset_parse_fail(p, ASSET_E_PARSE, "empty document, expected JSON");
    /* cJSON takes a NUL for whitespace; JSON has no NUL anywhere: refuse it here */
    const char *nul = memchr(text, 0, n);
    if (nul) {
        size_t line, col;
        position(text, nul, &line, &col);
        return asset_parse_fail(p, ASSET_E_PARSE, "invalid JSON: NUL byte at line %zu, column %zu",
                                line, col);
    }
    if ((nul = escaped_nul(text, n))) {
        size_t line, col;
        position(text, nul, &line, &col);
        return asset_parse_fail(p, ASSET_E_PARSE,
                                "unsupported JSON: \\u0000 at line %zu, column %zu (a string "
                                "cannot hold a NUL here)",
                                line, col);
    }
    /* before cJSON, whose recursion would overflow a small stack first (a 64 KiB thread
     * running a parse in a wait, a web worker: twenty-second review) */
    unsigned max_depth = s ? s->cfg.json_max_depth : ASSET__JSON_MAX_DEPTH; /* 1..ceiling */
    const char *too_deep = deeper_than(text, n, max_depth);
    if (too_deep) {
        size_t line, col;
        position(text, too_deep, &line, &col);
        return asset_parse_fail(
            p, ASSET_E_PARSE, "invalid JSON: nested deeper than %u levels at line %zu, column %zu",
            max_depth, line, col);
    }
    const char *end = NULL;
    /* n + 1: the library guarantees text[n] == 0, which cJSON wants to see when asked
     * to refuse trailing garbage */
    unsigned oom0 = asset__alloc_failures();
    cJSON *root = cJSON_ParseWithLengthOpts(text, n + 1, &end, 1);
    if (!root && asset__alloc_failures() != oom0) /* cJSON says NULL for no memory too */
        return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory parsing JSON");
    if (root && end == text + n) {
        asset_parse_set_value(p, root, json_cost(root));
        return ASSET_OK;
    }
    /* failed: numbers too long for cJSON 1.7.15? Then the copy is what is parsed, and
     * looked at below (work, wn), and an error is placed in text */
    const char *work = text;
    size_t wn = n, nsh = 0;
    shortened_t *sh = NULL;
    char *copy = NULL;
    if (!root) {
        bool oom = false;
        copy = shorten_numbers(text, n, &wn, &sh, &nsh, &oom);
        if (oom) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory parsing JSON");
        if (copy) {
            work = copy;
            root = cJSON_ParseWithLengthOpts(work, wn + 1, &end, 1);
            if ((!root && asset__alloc_failures() != oom0) || (root && end == work + wn)) {
                asset_free(copy);
                asset_free(sh);
                if (!root)
                    return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory parsing JSON");
                asset_parse_set_value(p, root, json_cost(root));
                return ASSET_OK;
            }
        }
    }
    if (!end || end < work || end > work + wn) end = work + wn;
    end = error_at(work, end);
    const char *at = text + document_offset(sh, nsh, (size_t)(end - work)); /* in text */
    size_t line, col;
    position(text, at, &line, &col);
    asset_status_t st;
    char near_text[32];
    excerpt(at, text + n, near_text, sizeof near_text);
    const char *vend = NULL;
    cJSON *prefix = NULL;
    unsigned oom1 = asset__alloc_failures();
    if (root) { /* cannot happen without a NUL inside; refuse rather than truncate */
        cJSON_Delete(root);
        st = asset_parse_fail(p, ASSET_E_PARSE, "invalid JSON at line %zu, column %zu", line, col);
    } else if ((prefix = cJSON_ParseWithLengthOpts(work, wn + 1, &vend, 0))) {
        /* a value followed by something else: parsed again without the end check */
        cJSON_Delete(prefix);
        st = asset_parse_fail(p, ASSET_E_PARSE,
                              "invalid JSON: trailing characters after the value at line %zu, "
                              "column %zu, near '%s'",
                              line, col, near_text);
    } else if (asset__alloc_failures() != oom1) { /* unread for want of memory, not wrong */
        st = asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory parsing JSON");
    } else if (end == work + wn) {
        st = asset_parse_fail(p, ASSET_E_PARSE,
                              "invalid JSON: unexpected end of document at line %zu, column %zu",
                              line, col);
    } else {
        st = asset_parse_fail(p, ASSET_E_PARSE, "invalid JSON at line %zu, column %zu, near '%s'",
                              line, col, near_text);
    }
    asset_free(copy);
    asset_free(sh);
    return st;
}

static void json_free(void *ctx, void *value) {
    (void)ctx;
    cJSON_Delete(value);
}

static const char *const json_suffixes[] = {".json", NULL};

const asset_loader_t asset__json_loader = {
    ASSET_LOADER_ABI, "json", json_suffixes, NULL, json_parse, json_free, NULL, 0, NULL,
};

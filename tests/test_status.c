/* test_status.c - the status table: ASSET_STATUS_MAP generates the enum,
 * asset_strerror() and asset_err_name(); every code is distinct, errors are
 * negative, unknown codes get a fixed fallback. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <asset_server.h>

#include "test_util.h"

typedef struct row {
    asset_status_t code;
    int raw;
    const char *name;
    const char *text;
} row_t;

static const row_t g_rows[] = {
#define ROW(name, code, text) {ASSET_##name, code, #name, text},
    ASSET_STATUS_MAP(ROW)
#undef ROW
};
#define NROWS (sizeof g_rows / sizeof g_rows[0])

static void test_every_code_maps_to_its_own_name_and_text(void **state) {
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        assert_int_equal((int)g_rows[i].code, g_rows[i].raw);
        assert_string_equal(asset_err_name(g_rows[i].code), g_rows[i].name);
        assert_string_equal(asset_strerror(g_rows[i].code), g_rows[i].text);
        assert_true(strlen(g_rows[i].text) > 0);
    }
}

static void test_codes_names_and_texts_are_distinct(void **state) {
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        for (size_t j = i + 1; j < NROWS; j++) {
            assert_int_not_equal(g_rows[i].raw, g_rows[j].raw);
            assert_string_not_equal(g_rows[i].name, g_rows[j].name);
            assert_string_not_equal(g_rows[i].text, g_rows[j].text);
            assert_string_not_equal(asset_strerror(g_rows[i].code), asset_strerror(g_rows[j].code));
            assert_string_not_equal(asset_err_name(g_rows[i].code), asset_err_name(g_rows[j].code));
        }
    }
}

static void test_errors_are_negative_results_are_not(void **state) {
    (void)state;
    size_t errors = 0;
    for (size_t i = 0; i < NROWS; i++) {
        bool is_error = strncmp(g_rows[i].name, "E_", 2) == 0;
        if (is_error) {
            assert_true(g_rows[i].raw < 0);
            errors++;
        } else {
            assert_true(g_rows[i].raw >= 0);
        }
    }
    assert_int_equal(ASSET_OK, 0);
    assert_true(ASSET_NOT_MODIFIED > 0);
    assert_true(ASSET_PENDING > 0);
    assert_true(errors >= 16);
}

static void test_error_codes_are_dense_from_minus_one(void **state) {
    /* append-only: the errors are -1, -2, ... with no gap (a gap means renumbering) */
    (void)state;
    int min = 0;
    size_t errors = 0;
    for (size_t i = 0; i < NROWS; i++) {
        if (g_rows[i].raw < 0) {
            errors++;
            if (g_rows[i].raw < min) min = g_rows[i].raw;
        }
    }
    assert_int_equal((size_t)-min, errors);
}

static void test_contract_codes_have_their_documented_values(void **state) {
    (void)state;
    /* never renumbered: these values are ABI */
    assert_int_equal(ASSET_E_INVALID, -1);
    assert_int_equal(ASSET_E_NO_SOURCE, -2);
    assert_int_equal(ASSET_E_NOT_FOUND, -3);
    assert_int_equal(ASSET_E_FORBIDDEN, -4);
    assert_int_equal(ASSET_E_IO, -5);
    assert_int_equal(ASSET_E_TOO_LARGE, -6);
    assert_int_equal(ASSET_E_PARSE, -7);
    assert_int_equal(ASSET_E_HTTP, -8);
    assert_int_equal(ASSET_E_NETWORK, -9);
    assert_int_equal(ASSET_E_TIMEOUT, -10);
    assert_int_equal(ASSET_E_CANCELLED, -11);
    assert_int_equal(ASSET_E_NO_MEMORY, -12);
    assert_int_equal(ASSET_E_UNSUPPORTED, -13);
    assert_int_equal(ASSET_E_INTEGRITY, -14);
    assert_int_equal(ASSET_E_SHUTDOWN, -15);
    assert_int_equal(ASSET_E_BUSY, -16);
    assert_string_equal(asset_err_name(ASSET_E_NOT_FOUND), "E_NOT_FOUND");
    assert_string_equal(asset_strerror(ASSET_E_NOT_FOUND), "not found");
    assert_string_equal(asset_err_name(ASSET_OK), "OK");
}

static void test_unknown_codes_get_fallback_strings(void **state) {
    (void)state;
    const int unknown[] = {-9999, -1000, 3, 77, 12345, -((int)NROWS + 100)};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *text = asset_strerror((asset_status_t)unknown[i]);
        const char *name = asset_err_name((asset_status_t)unknown[i]);
        assert_non_null(text);
        assert_non_null(name);
        assert_string_equal(text, "unknown status");
        assert_string_equal(name, "UNKNOWN");
    }
    /* the fallback does not collide with a real entry */
    for (size_t i = 0; i < NROWS; i++) {
        assert_string_not_equal(g_rows[i].text, "unknown status");
        assert_string_not_equal(g_rows[i].name, "UNKNOWN");
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_maps_to_its_own_name_and_text),
        cmocka_unit_test(test_codes_names_and_texts_are_distinct),
        cmocka_unit_test(test_errors_are_negative_results_are_not),
        cmocka_unit_test(test_error_codes_are_dense_from_minus_one),
        cmocka_unit_test(test_contract_codes_have_their_documented_values),
        cmocka_unit_test(test_unknown_codes_get_fallback_strings),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}

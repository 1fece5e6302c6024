/*
 * The Haltian measurement table (libcore/src/measurements.def): the promises the decoder and the
 * generator rely on when they read it, checked once here instead of by every reader.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "hcore/decode.h"
#include "measurements.h"

Test(measurements, every_type_is_found_by_its_name_and_keeps_its_unit)
{
    for (size_t i = 0; i < HC__M__COUNT; i++) {
        const struct hc__measurement *m = &hc__measurements[i];

        cr_assert_not_null(m->name, "type %zu has no row", i);
        cr_assert_str_eq(hc_decode_canonical_type(m->name), m->name);
        if (m->unit)
            cr_assert_str_eq(hc_decode_unit(m->name), m->unit);
        else
            cr_assert_null(hc_decode_unit(m->name), "%s", m->name);
    }
}

Test(measurements, every_alias_names_its_type_and_no_alias_is_a_type)
{
    for (size_t i = 0; i < HC__ALIAS_COUNT; i++) {
        const struct hc__measurement_alias *a = &hc__measurement_aliases[i];
        unsigned flags;

        cr_assert_str_eq(hc_decode_canonical_type(a->spelling), hc__measurements[a->type].name,
                         "%s", a->spelling);
        cr_assert_eq(hc__measurement_lookup(a->spelling, strlen(a->spelling), &flags),
                     &hc__measurements[a->type]);
        cr_assert_eq(flags, a->flags, "%s", a->spelling);
        for (size_t k = 0; k < HC__M__COUNT; k++)
            cr_assert_str_neq(a->spelling, hc__measurements[k].name);
    }
}

Test(measurements, generated_types_have_a_spelling_the_decoder_reads_and_decimals_it_can_write)
{
    for (size_t i = 0; i < HC__M__COUNT; i++) {
        const struct hc__gen_model *g = &hc__gen_models[i];
        const char *name = hc__measurements[i].name;
        const char *read;

        if (!g->mixed_spelling)
            continue;
        read = hc_decode_canonical_type(g->mixed_spelling);
        cr_assert_not_null(read, "%s", g->mixed_spelling);
        /* position's other spelling is the positionLocal type, which the decoder also reads */
        if (i != HC__M_POS)
            cr_assert_str_eq(read, name);
        cr_assert(g->decimals >= -1 && g->decimals <= 6, "%s: %d decimals", name, g->decimals);
        cr_assert(g->min <= g->max, "%s", name);
    }
}

Test(measurements, thingsee_fields_are_unique_and_belong_to_types_sent_in_a_legacy_profile)
{
    for (size_t i = 0; i < HC__THINGSEE_FIELD_COUNT; i++) {
        const struct hc__thingsee_field *f = &hc__thingsee_fields[i];

        cr_assert_neq(hc__measurements[f->type].tsm_id, 0, "%s", f->field);
        cr_assert(f->decimals >= 0 && f->decimals <= 6, "%s", f->field);
        for (size_t k = 0; k < i; k++)
            cr_assert_str_neq(hc__thingsee_fields[k].field, f->field);
    }
}

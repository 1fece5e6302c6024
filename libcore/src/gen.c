/*
 * The traffic generator (see hcore/gen.h). Every device owns a few "streams", one per measurement
 * type it sends; a stream wakes at its sampling period, advances the device's physical model
 * (mean-reverting random walks for temperature, humidity, pressure; Markov occupancy driven by a
 * day/night and weekday activity curve; slowly draining batteries) and decides whether the
 * sample is reported: always, on a threshold crossing, on a state change, or while there is
 * activity, with an hourly heartbeat otherwise.
 *
 * Most samples are not reported (a quiet office at night reports a fraction of them), so the
 * scheduler works per device, not per stream: a device runs its own streams ahead, in due order,
 * up to the next sample that is reported, and keeps that one pending. Devices share no state, so
 * this gives exactly the samples and random draws a global per-stream schedule would, while the
 * 4-ary min-heap keyed by (time of the pending report, device index) is touched once per message
 * instead of once per sample. Messages come out in time order; a device's reports at the same
 * millisecond come in stream order, and devices in index order.
 *
 * The hot path never allocates, never calls cJSON or printf, and uses no libm function whose
 * result could differ between C libraries (only +, *, / and sqrt): payloads are written by hand
 * into reused buffers, and the same seed gives the same bytes.
 */
#include "hcore/gen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_internal.h"
#include "internal.h"
#include "measurements.h"

/* ---- measurement types: measurements.def ------------------------------------------------- */

/* How a stream decides to report a sample. */
enum smode {
    SM_ALWAYS,    /* every sample */
    SM_THRESHOLD, /* change >= threshold since the last report, or heartbeat */
    SM_CHANGE,    /* state changed, or heartbeat */
    SM_ACTIVE     /* non-zero activity, or a zero heartbeat */
};

struct sspec {
    enum hc__mtype type;
    enum smode mode;
    int32_t sample_s;
    int32_t heartbeat_s;
    double threshold;
};

#define HOUR 3600
#define SIX_HOURS 21600

static const struct sspec env_hourly[] = {
    {HC__M_TEMP, SM_THRESHOLD, 60, HOUR, 0.5},  {HC__M_HUM, SM_THRESHOLD, 60, HOUR, 2.0},
    {HC__M_PRESS, SM_THRESHOLD, 60, HOUR, 1.0}, {HC__M_LIGHT, SM_THRESHOLD, 60, HOUR, 100.0},
    {HC__M_MAG, SM_CHANGE, 60, HOUR, 0},        {HC__M_MAGCH, SM_ALWAYS, HOUR, 0, 0},
    {HC__M_VIB, SM_ALWAYS, HOUR, 0, 0},         {HC__M_ORIENT, SM_ALWAYS, SIX_HOURS, 0, 0},
    {HC__M_BATT, SM_ALWAYS, SIX_HOURS, 0, 0},
};
static const struct sspec env_minute[] = {
    {HC__M_TEMP, SM_ALWAYS, 60, 0, 0},        {HC__M_HUM, SM_ALWAYS, 60, 0, 0},
    {HC__M_PRESS, SM_ALWAYS, 60, 0, 0},       {HC__M_LIGHT, SM_ALWAYS, 60, 0, 0},
    {HC__M_MAG, SM_CHANGE, 60, HOUR, 0},      {HC__M_MAGCH, SM_ALWAYS, HOUR, 0, 0},
    {HC__M_VIB, SM_ALWAYS, HOUR, 0, 0},       {HC__M_ORIENT, SM_ALWAYS, SIX_HOURS, 0, 0},
    {HC__M_BATT, SM_ALWAYS, SIX_HOURS, 0, 0},
};
static const struct sspec presence_movement[] = {
    {HC__M_MOVE, SM_ACTIVE, 60, HOUR, 0},
    {HC__M_BATT, SM_ALWAYS, SIX_HOURS, 0, 0},
};
static const struct sspec presence_occupancy[] = {
    {HC__M_OCC, SM_CHANGE, 60, HOUR, 0},
    {HC__M_BATT, SM_ALWAYS, SIX_HOURS, 0, 0},
};
static const struct sspec air_streams[] = {
    {HC__M_CO2, SM_ALWAYS, 300, 0, 0},   {HC__M_TVOC, SM_ALWAYS, 300, 0, 0},
    {HC__M_TEMP, SM_ALWAYS, 300, 0, 0},  {HC__M_HUM, SM_ALWAYS, 300, 0, 0},
    {HC__M_PRESS, SM_ALWAYS, 300, 0, 0}, {HC__M_BATT, SM_ALWAYS, SIX_HOURS, 0, 0},
};
static const struct sspec beam_streams[] = {
    {HC__M_DIST, SM_THRESHOLD, 60, HOUR, 100.0},
    {HC__M_TEMP, SM_THRESHOLD, 60, HOUR, 0.5},
    {HC__M_BATT, SM_ALWAYS, SIX_HOURS, 0, 0},
};
static const struct sspec count_streams[] = {
    {HC__M_DIRMOVE, SM_ACTIVE, 30, HOUR, 0},
};
static const struct sspec tag_streams[] = {
    {HC__M_POS, SM_ACTIVE, 60, HOUR, 0},      {HC__M_ZONE, SM_CHANGE, 60, HOUR, 0},
    {HC__M_CONF, SM_THRESHOLD, 60, HOUR, 10}, {HC__M_RSS, SM_ALWAYS, 600, 0, 0},
    {HC__M_BATT, SM_ALWAYS, SIX_HOURS, 0, 0},
};
static const struct sspec radar_streams[] = {
    {HC__M_OCC, SM_CHANGE, 60, HOUR, 0},
    {HC__M_DIST, SM_THRESHOLD, 60, HOUR, 200.0},
    {HC__M_ECHO, SM_ALWAYS, HOUR, 0, 0},
};
static const struct sspec leakage_streams[] = {
    {HC__M_RES, SM_THRESHOLD, 60, HOUR, 0.5}, /* relative change */
    {HC__M_TEMP, SM_THRESHOLD, 60, HOUR, 0.5},
    {HC__M_HUM, SM_THRESHOLD, 60, HOUR, 2.0},
    {HC__M_BATT, SM_ALWAYS, SIX_HOURS, 0, 0},
};

/*
 * A device group (a room or a floor) publishes like a device: how many people are in it, whether
 * it is occupied, entries and exits, and the seconds it was occupied each hour. Its occupants
 * come and go by the same activity curve as single devices' occupancy. Groups have no legacy
 * Thingsee form.
 */
static const struct sspec group_streams[] = {
    {HC__M_OCCUPANTS, SM_CHANGE, 60, HOUR, 0},
    {HC__M_OCC, SM_CHANGE, 60, HOUR, 0},
    {HC__M_DIRMOVE, SM_ACTIVE, 60, HOUR, 0},
    {HC__M_OCCSECONDS, SM_ALWAYS, HOUR, 0, 0},
};

static const char *const kind_names[HC_GEN_KIND__COUNT] = {
    "environment", "presence", "air", "beam", "count", "tag", "radar", "leakage", "group"};
/* Legacy device id prefixes (6 characters of the 17-character tuid); a group never sends one. */
static const char *const kind_tuid_prefix[HC_GEN_KIND__COUNT] = {
    "TSEN01", "TSPR04", "TSAR02", "TSBE01", "TSPC01", "TSAT01", "TSRA01", "TSLE01", "TSGR00"};
static const long default_mix[HC_GEN_KIND__COUNT] = {20, 40, 5, 5, 5, 10, 5, 5, 4};

/* ---- random numbers ----------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t mix3(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t s = a ^ (b * 0xd1b54a32d192ed03ULL) ^ (c * 0x8cb92ba72f3d8dd7ULL);
    splitmix64(&s);
    return splitmix64(&s);
}

static double uniform(uint64_t *state)
{
    return (double)(splitmix64(state) >> 11) * 0x1.0p-53;
}

static double uniform_in(uint64_t *state, double lo, double hi)
{
    return lo + (hi - lo) * uniform(state);
}

/* Approximately standard normal (Irwin-Hall of 4 uniforms, scaled): cheap and libm-free. */
static double normal(uint64_t *state)
{
    double s = uniform(state) + uniform(state) + uniform(state) + uniform(state);
    return (s - 2.0) * 1.7320508075688772;
}

static bool chance(uint64_t *state, double p)
{
    return uniform(state) < p;
}

static double clampd(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static void format_uuid(uint64_t hi, uint64_t lo, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    int i, j = 0;

    for (i = 0; i < 8; i++) {
        b[i] = (unsigned char)(hi >> (56 - 8 * i));
        b[8 + i] = (unsigned char)(lo >> (56 - 8 * i));
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[j++] = '-';
        out[j++] = hex[b[i] >> 4];
        out[j++] = hex[b[i] & 15];
    }
    out[j] = '\0';
}

static void uuid_from(uint64_t seed, uint64_t a, uint64_t b, char out[37])
{
    format_uuid(mix3(seed, a, b), mix3(seed ^ 0x5555555555555555ULL, a, b), out);
}

struct stream {
    int64_t due_ms; /* next sample */
    uint8_t type;
    uint8_t mode;
    int32_t sample_ms;
    int32_t heartbeat_ms;
    double threshold;
    int64_t last_emit_ms;
    double last_value;
};

#define KEY_SHIFT 24
#define MAX_DEVICES ((1u << KEY_SHIFT) - 1)

/* Weekday activity by UTC hour (office pattern), interpolated linearly between hours. */
static const double activity_by_hour[25] = {0.02, 0.02, 0.02, 0.02, 0.02, 0.03, 0.08, 0.30, 0.70,
                                            0.90, 0.95, 0.90, 0.75, 0.85, 0.90, 0.85, 0.70, 0.45,
                                            0.20, 0.10, 0.06, 0.04, 0.03, 0.02, 0.02};

static double activity_at(int64_t ms)
{
    int64_t days = ms >= 0 ? ms / 86400000 : (ms - 86399999) / 86400000;
    int64_t in_day = ms - days * 86400000;
    int dow = (int)(((days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday; 0 = Sunday */
    int hour = (int)(in_day / 3600000);
    double frac = (double)(in_day % 3600000) / 3600000.0;
    double a =
        activity_by_hour[hour] + (activity_by_hour[hour + 1] - activity_by_hour[hour]) * frac;
    return dow == 0 || dow == 6 ? a * 0.12 : a;
}

/* ---- heap --------------------------------------------------------------------------------- */

static void heap_sift_down(uint64_t *h, size_t n, size_t i)
{
    uint64_t key = h[i];
    for (;;) {
        size_t c = 4 * i + 1, best, k, end;
        if (c >= n)
            break;
        best = c;
        end = c + 4 < n ? c + 4 : n;
        for (k = c + 1; k < end; k++)
            if (h[k] < h[best])
                best = k;
        if (h[best] >= key)
            break;
        h[i] = h[best];
        i = best;
    }
    h[i] = key;
}

/*
 * Replaces the minimum with key. The key that comes back is the device's next report, usually
 * later than most others: walking the smaller children down to a leaf without comparing them
 * with it, then climbing back up the few levels it belongs above, takes about half the
 * comparisons of a plain sift-down, and the unpredictable ones among four are branch-free.
 */
static void heap_replace_top(uint64_t *h, size_t n, uint64_t key)
{
    size_t i = 0, c;

    while ((c = 4 * i + 1) + 3 < n) {
        size_t a = c + (h[c + 1] < h[c]);
        size_t b = c + 2 + (h[c + 3] < h[c + 2]);
        size_t best = h[b] < h[a] ? b : a;
        h[i] = h[best];
        i = best;
    }
    if (c < n) { /* the last node with children has fewer than four, all leaves */
        size_t best = c, k;
        for (k = c + 1; k < n; k++)
            if (h[k] < h[best])
                best = k;
        h[i] = h[best];
        i = best;
    }
    while (i > 0 && h[(i - 1) / 4] > key) {
        h[i] = h[(i - 1) / 4];
        i = (i - 1) / 4;
    }
    h[i] = key;
}

/* ---- the physical model ------------------------------------------------------------------- */

/* Markov occupancy step for a period of `minutes`: more arrivals and longer stays by day. */
static void step_occupancy(struct device *d, double a, double minutes)
{
    if (d->occupied)
        d->occupied = !chance(&d->rng, (0.03 + 0.15 * (1.0 - a)) * minutes);
    else
        d->occupied = chance(&d->rng, (0.004 + 0.08 * a) * minutes);
}

/* Mean-reverting walk: theta per minute toward mu, sigma per sqrt(minute). */
static double ou_step(uint64_t *rng, double x, double mu, double theta, double sigma,
                      double minutes)
{
    return x + theta * minutes * (mu - x) + sigma * sqrt(minutes) * normal(rng);
}

/* v within the range the model of type t keeps its samples in (measurements.def). */
static double model_clamp(enum hc__mtype t, double v)
{
    return clampd(v, hc__gen_models[t].min, hc__gen_models[t].max);
}

/* The people in a device group: up to 8 arrivals a minute by day, each occupant leaving with a
 * small chance. */
static double model_occupants(struct device *d, const struct stream *s, double a, struct gval *v)
{
    double minutes = (double)s->sample_ms / 60000.0;
    uint32_t in = 0, out = 0, room = d->capacity - d->occupants;
    double p_in = clampd(0.9 * a * (double)d->capacity / 40.0, 0.0, 1.0);
    double p_out = clampd((0.02 + 0.2 * (1.0 - a)) * minutes, 0.0, 1.0);
    for (int i = 0; i < 8 && in < room; i++)
        in += chance(&d->rng, p_in);
    for (uint32_t k = 0; k < d->occupants; k++)
        out += chance(&d->rng, p_out);
    if (d->occupants > 0)
        d->occupied_s += (uint32_t)(s->sample_ms / 1000);
    d->occupants = d->occupants + in - out;
    d->occupied = d->occupants > 0;
    d->group_in += in;
    d->group_out += out;
    return v->v[0] = d->occupants;
}

/* Entries and exits: a group reports what its occupants did, a counter draws them. */
static double model_entries_exits(struct device *d, double a, struct gval *v)
{
    double p = clampd(2.5 * a * d->traffic / 8.0, 0.0, 1.0);
    int in = 0, out = 0;

    if (d->kind == HC_GEN_GROUP) { /* what the occupants stream saw since the last report */
        d->total_in += d->group_in;
        d->total_out += d->group_out;
        v->v[0] = d->group_in;
        v->v[1] = d->group_out;
        d->group_in = d->group_out = 0;
        return v->v[0] + v->v[1];
    }
    for (int i = 0; i < 8; i++) {
        in += chance(&d->rng, p);
        out += chance(&d->rng, p);
    }
    d->total_in += (uint32_t)in;
    d->total_out += (uint32_t)out;
    v->v[0] = in;
    v->v[1] = out;
    return in + out;
}

/* A door contact: opens by day, closes again soon; counts its changes. */
static double model_door(struct device *d, double a, struct gval *v)
{
    if (d->door) {
        bool was = d->door_open;
        if (d->door_open)
            d->door_open = !chance(&d->rng, 0.6);
        else
            d->door_open = chance(&d->rng, 0.15 * a);
        if (was != d->door_open) {
            d->door_changes++;
            d->hall_total++;
        }
    }
    v->b = d->door_open;
    return d->door_open ? 1.0 : 0.0;
}

/* A radar sees a person near or the far wall; a beam something passing. */
static double model_distance(struct device *d, double a, double minutes, struct gval *v)
{
    if (d->kind == HC_GEN_RADAR) {
        /* occupancy is advanced by the radar's occupancy stream */
        if (d->occupied)
            d->dist =
                clampd(ou_step(&d->rng, d->dist, d->dist_near, 0.2, 80.0, minutes), 300.0, 3900.0);
        else
            d->dist = d->dist_far + 10.0 * normal(&d->rng);
    } else {
        if (d->present)
            d->present = !chance(&d->rng, 0.05 + 0.2 * (1.0 - a));
        else
            d->present = chance(&d->rng, 0.03 * a);
        d->dist = (d->present ? d->dist_near : d->dist_far) + 12.0 * normal(&d->rng);
    }
    d->dist = model_clamp(HC__M_DIST, d->dist);
    return v->v[0] = (double)hc__gen_round(d->dist);
}

/* A leakage sensor: dry (megaohms, a few % noise) except during a rare leak. */
static double model_resistance(struct device *d, int64_t t, struct gval *v)
{
    if (d->leak_until_ms <= t && chance(&d->rng, 1.0 / 4320.0)) /* about one leak in 3 days */
        d->leak_until_ms = t + (int64_t)uniform_in(&d->rng, 10.0, 90.0) * 60000;
    if (d->leak_until_ms > t)
        d->res = uniform_in(&d->rng, 800.0, 20000.0);
    else
        d->res = d->res_base * (1.0 + 0.03 * normal(&d->rng));
    return v->v[0] = d->res;
}

/* An asset tag: moves now and then within a 40 m x 25 m floor, reflected at the walls. */
static double model_position(struct device *d, double a, struct gval *v)
{
    if (d->moving)
        d->moving = !chance(&d->rng, 0.3);
    else
        d->moving = chance(&d->rng, 0.01 + 0.2 * a);
    if (d->moving) {
        d->move_count++;
        d->x += 2.0 * normal(&d->rng);
        d->y += 2.0 * normal(&d->rng);
        d->x = d->x < 0 ? -d->x : d->x > 40.0 ? 80.0 - d->x : d->x;
        d->y = d->y < 0 ? -d->y : d->y > 25.0 ? 50.0 - d->y : d->y;
        d->x = clampd(d->x, 0.0, 40.0);
        d->y = clampd(d->y, 0.0, 25.0);
    }
    v->v[0] = uniform_in(&d->rng, 0.5, 5.0); /* accuracy, m */
    return d->moving ? 1.0 : 0.0;
}

/*
 * The ambient models (temperature, humidity, pressure, light, CO2, TVOC): each moves towards a
 * level that, but for pressure, follows the day's activity a (and CO2 and TVOC the room's
 * occupancy), with noise. Fills v; returns the scalar.
 */
static double model_environment(struct device *d, enum hc__mtype type, double a, double minutes,
                                struct gval *v)
{
    switch (type) {
    case HC__M_TEMP:
        d->temp = model_clamp(
            HC__M_TEMP, ou_step(&d->rng, d->temp, d->temp_base + 1.8 * a, 0.01, 0.04, minutes));
        return v->v[0] = d->temp;
    case HC__M_HUM:
        d->hum = model_clamp(HC__M_HUM,
                             ou_step(&d->rng, d->hum, d->hum_base + 6.0 * a, 0.01, 0.15, minutes));
        return v->v[0] = d->hum;
    case HC__M_PRESS:
        d->press =
            model_clamp(HC__M_PRESS, ou_step(&d->rng, d->press, 1013.25, 0.0005, 0.03, minutes));
        return v->v[0] = d->press;
    case HC__M_LIGHT: {
        double target = 2.0 + d->light_base * (a > 0.15 ? a : 0.0);
        d->light =
            model_clamp(HC__M_LIGHT, d->light + 0.6 * (target - d->light) + 12.0 * normal(&d->rng));
        return v->v[0] = d->light;
    }
    case HC__M_CO2:
        step_occupancy(d, a, minutes);
        d->co2 = model_clamp(HC__M_CO2,
                             d->co2 + 0.15 * ((d->occupied ? 950.0 * a + 500.0 : 420.0) - d->co2) +
                                 10.0 * normal(&d->rng));
        return v->v[0] = d->co2;
    case HC__M_TVOC:
        d->tvoc = model_clamp(HC__M_TVOC,
                              d->tvoc + 0.2 * ((d->occupied ? 80.0 + 420.0 * a : 60.0) - d->tvoc) +
                                  8.0 * normal(&d->rng));
        return v->v[0] = d->tvoc;
    default:
        return 0;
    }
}

/* Advances stream s's model to t and fills g->val. Returns the scalar compared by thresholds. */
static double sample(hc_gen *g, struct device *d, const struct stream *s, int64_t t)
{
    struct gval *v = &g->val;
    double a = activity_at(t);
    double minutes = (double)s->sample_ms / 60000.0;

    switch ((enum hc__mtype)s->type) {
    case HC__M_TEMP:
    case HC__M_HUM:
    case HC__M_PRESS:
    case HC__M_LIGHT:
    case HC__M_CO2:
    case HC__M_TVOC:
        return model_environment(d, (enum hc__mtype)s->type, a, minutes, v);
    case HC__M_OCC:
        if (d->kind != HC_GEN_GROUP) /* a group's occupancy follows its occupants */
            step_occupancy(d, a, minutes);
        v->b = d->occupied;
        return d->occupied ? 1.0 : 0.0;
    case HC__M_OCCUPANTS:
        return model_occupants(d, s, a, v);
    case HC__M_OCCSECONDS:
        v->v[0] = d->occupied_s > 3600 ? 3600 : d->occupied_s;
        d->occupied_s = 0;
        return v->v[0];
    case HC__M_MOVE:
        step_occupancy(d, a, minutes);
        v->v[0] = 0;
        if (d->occupied && !chance(&d->rng, 0.1)) {
            double m = 1.0 + uniform(&d->rng) * (4.0 + 26.0 * a);
            v->v[0] = m > 34.0 ? 34.0 : (double)(int)m;
        }
        return v->v[0];
    case HC__M_DIRMOVE:
        return model_entries_exits(d, a, v);
    case HC__M_BATT:
        d->batt = model_clamp(HC__M_BATT, d->batt - uniform(&d->rng) * 0.06);
        return v->v[0] = d->batt;
    case HC__M_MAG:
        return model_door(d, a, v);
    case HC__M_MAGCH:
        v->v[0] = d->door_changes;
        d->door_changes = 0;
        return v->v[0];
    case HC__M_VIB:
        v->v[0] = model_clamp(HC__M_VIB, 0.01 + 0.25 * a * uniform(&d->rng));
        d->vib_total = d->vib_total * 0.9 + v->v[0] * 10.0;
        v->v[1] = d->vib_total;
        return v->v[0];
    case HC__M_ORIENT:
        v->v[0] = d->ox + 0.004 * normal(&d->rng);
        v->v[1] = d->oy + 0.004 * normal(&d->rng);
        v->v[2] = sqrt(1.0 - d->ox * d->ox - d->oy * d->oy) + 0.004 * normal(&d->rng);
        return v->v[2];
    case HC__M_DIST:
        return model_distance(d, a, minutes, v);
    case HC__M_ECHO:
        d->echo =
            model_clamp(HC__M_ECHO, 40.0 + (d->occupied ? 120.0 : 0.0) + 15.0 * normal(&d->rng));
        return v->v[0] = d->echo;
    case HC__M_RES:
        return model_resistance(d, t, v);
    case HC__M_POS:
        return model_position(d, a, v);
    case HC__M_ZONE:
        d->zone = (uint8_t)((d->x >= 20.0 ? 1 : 0) + (d->y >= 12.5 ? 2 : 0));
        return d->zone;
    case HC__M_CONF:
        d->conf = model_clamp(
            HC__M_CONF, ou_step(&d->rng, d->conf, d->moving ? 70.0 : 90.0, 0.2, 3.0, minutes));
        return v->v[0] = d->conf;
    case HC__M_RSS:
        v->v[0] = model_clamp(HC__M_RSS, -70.0 + 8.0 * normal(&d->rng));
        return v->v[0];
    default:
        break;
    }
    return 0;
}

/* Decides whether the sample just taken is reported; sets the Thingsee event reason. */
static bool should_report(hc_gen *g, struct stream *s, double x, int64_t t)
{
    bool heartbeat = s->heartbeat_ms > 0 && t - s->last_emit_ms >= s->heartbeat_ms;
    double diff = x - s->last_value;

    g->val.tsm_ev = 10; /* timed */
    switch ((enum smode)s->mode) {
    case SM_ALWAYS:
        return true;
    case SM_THRESHOLD:
        if (diff < 0)
            diff = -diff;
        if (s->type == HC__M_RES) /* relative: resistance spans decades */
            diff = s->last_value > 0 ? diff / s->last_value : 1.0;
        if (diff >= s->threshold) {
            g->val.tsm_ev = 9;
            return true;
        }
        return heartbeat;
    case SM_CHANGE:
        if (x != s->last_value) {
            g->val.tsm_ev = 7;
            return true;
        }
        return heartbeat;
    case SM_ACTIVE:
        return x != 0.0 || heartbeat;
    }
    return false;
}

/*
 * Runs device d's streams ahead, each sample in due order (ties in stream order), until one is
 * reported: that one becomes the device's pending report at *t_out. False when no sample of the
 * device is reported before the end.
 */
static bool device_advance(hc_gen *g, struct device *d, int64_t *t_out)
{
    struct stream *first = &g->streams[d->first_stream];
    uint32_t n = d->n_streams, i;

    for (;;) {
        struct stream *s = NULL;
        int64_t t = INT64_MAX;
        double x;

        for (i = 0; i < n; i++)
            if (first[i].due_ms < t) {
                t = first[i].due_ms;
                s = &first[i];
            }
        if (!s || t >= g->end_ms)
            return false;
        s->due_ms = t + s->sample_ms;
        x = sample(g, d, s, t);
        if (!should_report(g, s, x, t))
            continue;
        s->last_emit_ms = t;
        s->last_value = x;
        d->pending = (uint32_t)(s - first);
        d->report = g->val;
        *t_out = t;
        return true;
    }
}

/* ---- setup -------------------------------------------------------------------------------- */

void hc_gen_options_init(struct hc_gen_options *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->seed = 1;
    opts->start_ns = HC_GEN_DEFAULT_START_NS;
    opts->duration_ns = 3600LL * 1000000000LL;
    memcpy(opts->devices, default_mix, sizeof(default_mix));
}

const char *hc_gen_kind_name(enum hc_gen_kind kind)
{
    return (unsigned)kind < HC_GEN_KIND__COUNT ? kind_names[kind] : NULL;
}

hc_err hc_gen_parse_devices(const char *spec, long counts[HC_GEN_KIND__COUNT], hc_error *err)
{
    bool seen[HC_GEN_KIND__COUNT] = {false};
    const char *p = spec;
    long total = 0;
    int k;

    for (k = 0; k < HC_GEN_KIND__COUNT; k++)
        counts[k] = 0;
    if (!spec || !*spec)
        return hc_error_set(err, HC_ERR_INVALID, "empty device mix");
    while (*p) {
        const char *eq = strchr(p, '='), *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        char *num_end;
        size_t name_len;
        long n;

        if (!eq || eq > end)
            return hc_error_set(err, HC_ERR_INVALID, "expected KIND=COUNT, got '%.*s'",
                                (int)(end - p), p);
        name_len = (size_t)(eq - p);
        for (k = 0; k < HC_GEN_KIND__COUNT; k++)
            if (strlen(kind_names[k]) == name_len && memcmp(kind_names[k], p, name_len) == 0)
                break;
        if (k == HC_GEN_KIND__COUNT)
            return hc_error_set(err, HC_ERR_INVALID,
                                "unknown device kind '%.*s' (known: environment, presence, air, "
                                "beam, count, tag, radar, leakage, group)",
                                (int)name_len, p);
        if (seen[k])
            return hc_error_set(err, HC_ERR_INVALID, "device kind '%s' given twice", kind_names[k]);
        seen[k] = true;
        if (eq + 1 == end || eq[1] < '0' || eq[1] > '9')
            return hc_error_set(err, HC_ERR_INVALID, "bad count '%.*s' for '%s'",
                                (int)(end - eq - 1), eq + 1, kind_names[k]);
        n = strtol(eq + 1, &num_end, 10);
        if (num_end != end || n < 0 || n > 1000000)
            return hc_error_set(err, HC_ERR_INVALID,
                                "bad count '%.*s' for '%s' (a whole number up to 1000000)",
                                (int)(end - eq - 1), eq + 1, kind_names[k]);
        counts[k] = n;
        total += n;
        p = comma ? comma + 1 : end;
        if (comma && !*p)
            return hc_error_set(err, HC_ERR_INVALID, "trailing ',' in device mix");
    }
    if (total == 0)
        return hc_error_set(err, HC_ERR_INVALID, "no devices in the mix");
    return HC_OK;
}

static void make_tuid(uint64_t *rng, const char *prefix, char out[18])
{
    int i;
    memcpy(out, prefix, 6);
    for (i = 6; i < 9; i++)
        out[i] = (char)('A' + splitmix64(rng) % 26);
    for (i = 9; i < 17; i++)
        out[i] = (char)('0' + splitmix64(rng) % 10);
    out[17] = '\0';
}

static void init_device(hc_gen *g, struct device *d, enum hc_gen_kind kind, uint32_t index)
{
    uint64_t *r = &d->rng;

    memset(d, 0, sizeof(*d));
    d->kind = kind;
    d->index = index;
    d->rng = mix3(g->opts.seed, (uint64_t)kind + 1, (uint64_t)index + 1);
    if (g->opts.thingsee)
        make_tuid(r, kind_tuid_prefix[kind], d->id);
    else
        uuid_from(g->opts.seed, 0x100 + (uint64_t)kind, index, d->id);
    if (g->opts.shapes == HC_GEN_SHAPES_MIXED && !g->opts.thingsee) {
        double u = uniform(r);
        d->ts_style = (uint8_t)(u < 0.5 ? 0 : u < 0.8 ? 1 : 2);
        d->alias_style = chance(r, 0.35);
        d->named_style = chance(r, 0.5);
        d->pos_style = (uint8_t)(splitmix64(r) % 4);
    }
    d->temp_base = uniform_in(r, 19.5, 23.0);
    d->temp = d->temp_base + uniform_in(r, -0.5, 0.5);
    d->hum_base = uniform_in(r, 25.0, 50.0);
    d->hum = d->hum_base;
    d->press = 1013.25 + uniform_in(r, -12.0, 12.0);
    d->light_base = uniform_in(r, 300.0, 700.0);
    d->co2 = 420.0;
    d->tvoc = 60.0;
    d->batt = uniform_in(r, 45.0, 100.0);
    d->conf = uniform_in(r, 75.0, 95.0);
    d->res_base = uniform_in(r, 1.5e6, 8e6);
    d->res = d->res_base;
    d->x = uniform_in(r, 0.0, 40.0);
    d->y = uniform_in(r, 0.0, 25.0);
    d->floor = (uint8_t)(splitmix64(r) % 4);
    d->zone = (uint8_t)((d->x >= 20.0 ? 1 : 0) + (d->y >= 12.5 ? 2 : 0));
    d->dist_far = uniform_in(r, kind == HC_GEN_RADAR ? 3200.0 : 1800.0, 3800.0);
    d->dist_near = uniform_in(r, 600.0, 1400.0);
    d->dist = d->dist_far;
    d->traffic = uniform_in(r, 0.5, 2.0);
    d->door = chance(r, 0.3);
    d->ox = uniform_in(r, -0.05, 0.05);
    d->oy = uniform_in(r, -0.05, 0.05);
    if (kind == HC_GEN_GROUP) /* drawn last: other kinds' draws stay as they were */
        d->capacity = 4 + (uint32_t)(splitmix64(r) % 37);
}

static void device_streams(const hc_gen *g, const struct device *d, const struct sspec **specs,
                           size_t *n)
{
    switch (d->kind) {
    case HC_GEN_ENVIRONMENT:
        /* a fifth report every minute, the rest hourly with threshold events */
        if ((mix3(g->opts.seed, 0xe1, d->index) % 5) == 0) {
            *specs = env_minute;
            *n = HC__ARRAY_LEN(env_minute);
        } else {
            *specs = env_hourly;
            *n = HC__ARRAY_LEN(env_hourly);
        }
        return;
    case HC_GEN_PRESENCE:
        if ((mix3(g->opts.seed, 0xe2, d->index) % 5) < 3) {
            *specs = presence_movement;
            *n = HC__ARRAY_LEN(presence_movement);
        } else {
            *specs = presence_occupancy;
            *n = HC__ARRAY_LEN(presence_occupancy);
        }
        return;
    case HC_GEN_AIR:
        *specs = air_streams;
        *n = HC__ARRAY_LEN(air_streams);
        return;
    case HC_GEN_BEAM:
        *specs = beam_streams;
        *n = HC__ARRAY_LEN(beam_streams);
        return;
    case HC_GEN_COUNT:
        *specs = count_streams;
        *n = HC__ARRAY_LEN(count_streams);
        return;
    case HC_GEN_TAG:
        *specs = tag_streams;
        *n = HC__ARRAY_LEN(tag_streams);
        return;
    case HC_GEN_RADAR:
        *specs = radar_streams;
        *n = HC__ARRAY_LEN(radar_streams);
        return;
    case HC_GEN_GROUP:
        *specs = group_streams;
        /* no legacy form: a group sends nothing in Thingsee mode */
        *n = g->opts.thingsee ? 0 : HC__ARRAY_LEN(group_streams);
        return;
    case HC_GEN_LEAKAGE:
    default:
        *specs = leakage_streams;
        *n = HC__ARRAY_LEN(leakage_streams);
        return;
    }
}

/* The value a stream starts from, so the first sample is not mistaken for a threshold event. */
static double initial_value(const struct device *d, enum hc__mtype t)
{
    switch (t) {
    case HC__M_TEMP:
        return d->temp;
    case HC__M_HUM:
        return d->hum;
    case HC__M_PRESS:
        return d->press;
    case HC__M_LIGHT:
        return d->light;
    case HC__M_DIST:
        return (double)hc__gen_round(d->dist);
    case HC__M_RES:
        return d->res;
    case HC__M_CONF:
        return d->conf;
    case HC__M_ZONE:
        return d->zone;
    default:
        return 0.0;
    }
}

/* Checks what hc_gen_new cannot work with; *n_dev: devices in the mix. */
static hc_err check_options(const struct hc_gen_options *opts, size_t *n_dev, hc_error *err)
{
    const char *integration =
        opts->integration_id ? opts->integration_id : HC_GEN_DEFAULT_INTEGRATION_ID;
    const char *api_key = opts->api_key_id ? opts->api_key_id : HC_GEN_DEFAULT_API_KEY_ID;

    *n_dev = 0;
    for (int k = 0; k < HC_GEN_KIND__COUNT; k++) {
        if (opts->devices[k] < 0 || opts->devices[k] > 1000000)
            return hc_error_set(err, HC_ERR_INVALID, "bad device count %ld for '%s'",
                                opts->devices[k], kind_names[k]);
        *n_dev += (size_t)opts->devices[k];
    }
    if (*n_dev == 0)
        return hc_error_set(err, HC_ERR_INVALID, "no devices in the mix");
    if (*n_dev > MAX_DEVICES)
        return hc_error_set(err, HC_ERR_INVALID, "too many devices (%zu, at most %u)", *n_dev,
                            MAX_DEVICES);
    if (opts->duration_ns < 0 || opts->duration_ns / 1000000 >= (INT64_C(1) << 39))
        return hc_error_set(err, HC_ERR_INVALID, "duration out of range");
    if (opts->start_ns < 0)
        return hc_error_set(err, HC_ERR_INVALID, "start before 1970");
    if (strlen(integration) + strlen(api_key) > 200 || strchr(integration, '/') ||
        strchr(api_key, '/') || !*integration || !*api_key)
        return hc_error_set(err, HC_ERR_INVALID,
                            "integration and API key ids must be non-empty topic levels");
    return HC_OK;
}

/* The topic prefix, the time span and the installation's fixed ids, all from the seed. */
static void set_identities(hc_gen *g, const struct hc_gen_options *opts)
{
    uint64_t r;

    g->opts = *opts;
    g->opts.integration_id = NULL; /* not kept: the prefix holds them */
    g->opts.api_key_id = NULL;
    g->prefix_len = (size_t)snprintf(
        g->prefix, sizeof(g->prefix), "haltian-iot/events/%s/%s/measurements/",
        opts->integration_id ? opts->integration_id : HC_GEN_DEFAULT_INTEGRATION_ID,
        opts->api_key_id ? opts->api_key_id : HC_GEN_DEFAULT_API_KEY_ID);
    g->start_ms = (opts->start_ns + 999999) / 1000000;
    g->end_ms = (opts->start_ns + opts->duration_ns + 999999) / 1000000;
    g->day_cached = -1;
    g->latency_rng = mix3(opts->seed, 0x1a7e, 0);
    g->last_received_ns = INT64_MIN;
    r = mix3(opts->seed, 0x6a7e, 0);
    make_tuid(&r, "TSGW06", g->gateway_tuid);
    uuid_from(opts->seed, 0x200, 0, g->gateway_uuid);
    uuid_from(opts->seed, 0x201, 0, g->space_id);
    uuid_from(opts->seed, 0x202, 0, g->building_id);
    for (size_t i = 0; i < 4; i++)
        uuid_from(opts->seed, 0x203, i, g->zone_ids[i]);
}

/* Whether a stream of type t is sent at all (a legacy Thingsee mix only sends legacy types). */
static bool stream_sent(const hc_gen *g, enum hc__mtype t)
{
    return !g->opts.thingsee || hc__measurements[t].tsm_id;
}

/* Initialises every device of the mix; returns how many streams they have. */
static size_t init_devices(hc_gen *g, const struct hc_gen_options *opts)
{
    size_t i = 0, n_str = 0;

    for (int k = 0; k < HC_GEN_KIND__COUNT; k++) {
        g->kind_first[k] = i;
        for (long j = 0; j < opts->devices[k]; j++) {
            const struct sspec *specs;
            size_t n;

            init_device(g, &g->devices[i], (enum hc_gen_kind)k, (uint32_t)j);
            device_streams(g, &g->devices[i], &specs, &n);
            for (size_t s = 0; s < n; s++)
                n_str += stream_sent(g, specs[s].type);
            i++;
        }
    }
    return n_str;
}

/* Appends device d's streams to g->streams, each with its own phase. */
static void add_streams(hc_gen *g, struct device *d)
{
    const struct sspec *specs;
    size_t n;

    device_streams(g, d, &specs, &n);
    d->first_stream = (uint32_t)g->n_streams;
    for (size_t s = 0; s < n; s++) {
        struct stream *st;
        int64_t first, beats;

        if (!stream_sent(g, specs[s].type))
            continue;
        st = &g->streams[g->n_streams];
        st->type = (uint8_t)specs[s].type;
        st->mode = (uint8_t)specs[s].mode;
        st->sample_ms = specs[s].sample_s * 1000;
        st->heartbeat_ms = specs[s].heartbeat_s * 1000;
        st->threshold = specs[s].threshold;
        st->last_value = initial_value(d, specs[s].type);
        /* per-stream phase so devices do not all report on the same second */
        first = (int64_t)(splitmix64(&d->rng) % (uint64_t)st->sample_ms);
        /* a heartbeat already under way: the first ones spread over the hour */
        beats = st->heartbeat_ms ? st->heartbeat_ms / st->sample_ms : 1;
        st->last_emit_ms = g->start_ms + first -
                           (int64_t)(1 + splitmix64(&d->rng) % (uint64_t)beats) * st->sample_ms;
        st->due_ms = g->start_ms + first;
        g->n_streams++;
        d->n_streams++;
    }
}

/* Puts each device's first report in the heap. */
static void prime_heap(hc_gen *g)
{
    for (size_t i = 0; i < g->n_devices; i++) {
        int64_t t;

        if (device_advance(g, &g->devices[i], &t))
            g->heap[g->heap_len++] = ((uint64_t)(t - g->start_ms) << KEY_SHIFT) | i;
    }
    for (size_t i = g->heap_len / 4 + 1; i-- > 0;)
        heap_sift_down(g->heap, g->heap_len, i);
}

hc_err hc_gen_new(const struct hc_gen_options *opts, hc_gen **out, hc_error *err)
{
    hc_gen *g;
    size_t n_dev, n_str;
    hc_err rc;

    if (!opts || !out)
        return hc_error_set(err, HC_ERR_INVALID, "missing options");
    *out = NULL;
    rc = check_options(opts, &n_dev, err);
    if (rc != HC_OK)
        return rc;
    g = calloc(1, sizeof(*g));
    if (!g)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    set_identities(g, opts);
    g->n_devices = n_dev;
    g->devices = calloc(n_dev, sizeof(*g->devices));
    if (!g->devices)
        goto nomem;
    n_str = init_devices(g, opts);
    g->streams = calloc(n_str ? n_str : 1, sizeof(*g->streams));
    g->heap = calloc(n_dev, sizeof(*g->heap));
    if (!g->streams || !g->heap)
        goto nomem;
    for (size_t i = 0; i < n_dev; i++)
        add_streams(g, &g->devices[i]);
    /* only now: a device's phases are drawn before any of its samples */
    prime_heap(g);
    *out = g;
    return HC_OK;

nomem:
    hc_gen_free(g);
    return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
}

hc_err hc_gen_next(hc_gen *g, struct hc_gen_msg *msg)
{
    uint64_t key;
    struct device *d;
    const struct stream *s;
    int64_t t, next, latency_ns;
    size_t len;

    if (g->heap_len == 0)
        return HC_DONE;
    key = g->heap[0];
    d = &g->devices[key & MAX_DEVICES];
    s = &g->streams[d->first_stream + d->pending];
    t = g->start_ms + (int64_t)(key >> KEY_SHIFT);

    /* formatted before the device runs ahead: it reads the device's state as of the sample */
    g->val = d->report;
    len = g->opts.thingsee ? hc__gen_format_thingsee(g, d, (enum hc__mtype)s->type, t)
                           : hc__gen_format_haltian(g, d, (enum hc__mtype)s->type, t);
    msg->type = hc__measurements[s->type].name;
    if (s->type == HC__M_POS && d->pos_style == 3)
        msg->type = "positionLocal";
    msg->kind = d->kind;
    msg->device = d->index;

    if (device_advance(g, d, &next)) {
        heap_replace_top(g->heap, g->heap_len,
                         ((uint64_t)(next - g->start_ms) << KEY_SHIFT) | (key & MAX_DEVICES));
    } else {
        g->heap_len--;
        if (g->heap_len > 0)
            heap_replace_top(g->heap, g->heap_len, g->heap[g->heap_len]);
    }

    /* delivery latency: 60-260 ms through the cloud, sometimes seconds */
    latency_ns = 60000000 + (int64_t)(splitmix64(&g->latency_rng) % 200000000);
    if (splitmix64(&g->latency_rng) % 100 == 0)
        latency_ns += (int64_t)(splitmix64(&g->latency_rng) % 3000000000LL);
    msg->measured_at_ns = t * 1000000;
    msg->received_at_ns = msg->measured_at_ns + latency_ns;
    if (msg->received_at_ns <= g->last_received_ns)
        msg->received_at_ns = g->last_received_ns + 1000;
    g->last_received_ns = msg->received_at_ns;
    msg->topic = g->topic;
    msg->payload = g->payload;
    msg->payload_len = len;
    return HC_OK;
}

const char *hc_gen_device_id(const hc_gen *g, enum hc_gen_kind kind, uint32_t device)
{
    if ((unsigned)kind >= HC_GEN_KIND__COUNT || device >= (uint32_t)g->opts.devices[kind])
        return NULL;
    return g->devices[g->kind_first[kind] + device].id;
}

void hc_gen_free(hc_gen *g)
{
    if (!g)
        return;
    free(g->devices);
    free(g->streams);
    free(g->heap);
    free(g);
}

/*
 * libsrtp2 baseline for the SRTP part of benches/media.rs.
 *
 * Compiled and run by media.rs at bench time (`cc -O2 libsrtp_bench.c -lsrtp2`); not part
 * of any cusax crate. For each profile it creates a sender and a receiver srtp_t with the
 * same master key (replay window 128, like the Rust side), then times N protect+unprotect
 * pairs of a 12-byte RTP header + 160-byte payload, only the sequence number and timestamp
 * changing per packet. It prints one line per profile:
 *
 *     <profile> <median ns per pair over RUNS runs>
 *
 * or `<profile> n/a <reason>` when libsrtp2 rejects the profile (e.g. GCM in a build
 * without a crypto backend that provides it).
 *
 * Usage: libsrtp_bench [iters] [runs] [profile]
 *
 * With [profile] only that profile runs (for instruction counts under callgrind:
 * `valgrind --tool=callgrind libsrtp_bench 300 1 AEAD_AES_128_GCM`; the cost of one pair
 * is the difference between two runs with different iters divided by the difference).
 */
#include <srtp2/srtp.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAYLOAD_LEN 160
#define HDR_LEN 12
#define MAX_RUNS 64

typedef void (*policy_setter)(srtp_crypto_policy_t *);

struct profile {
    const char *name;
    policy_setter set;
    int key_len; /* master key + salt */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static srtp_err_status_t make_session(srtp_t *s, const struct profile *p,
                                      unsigned char *key, int inbound)
{
    srtp_policy_t pol;
    memset(&pol, 0, sizeof pol);
    p->set(&pol.rtp);
    p->set(&pol.rtcp);
    pol.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound;
    pol.key = key;
    pol.window_size = 128;
    pol.allow_repeat_tx = 0;
    pol.next = NULL;
    return srtp_create(s, &pol);
}

/* Returns 0 and the median ns per pair in *out, or a nonzero status. */
static int run_profile(const struct profile *p, unsigned iters, unsigned runs,
                       uint64_t *out, char *why, size_t why_len)
{
    unsigned char key[64];
    for (int i = 0; i < p->key_len; i++)
        key[i] = (unsigned char)((i * 7) ^ 1);

    srtp_t tx = NULL, rx = NULL;
    srtp_err_status_t st = make_session(&tx, p, key, 0);
    if (st == srtp_err_status_ok)
        st = make_session(&rx, p, key, 1);
    if (st != srtp_err_status_ok) {
        snprintf(why, why_len, "srtp_create failed (srtp_err_status %d)", (int)st);
        if (tx)
            srtp_dealloc(tx);
        return 1;
    }

    unsigned char tmpl[HDR_LEN + PAYLOAD_LEN];
    memset(tmpl, 0x5a, sizeof tmpl);
    /* V=2, no padding/extension/CSRC, M=0, PT=0, SSRC=7 */
    tmpl[0] = 0x80;
    tmpl[1] = 0;
    tmpl[8] = 0;
    tmpl[9] = 0;
    tmpl[10] = 0;
    tmpl[11] = 7;

    unsigned char buf[HDR_LEN + PAYLOAD_LEN + SRTP_MAX_TRAILER_LEN];
    uint64_t samples[MAX_RUNS];
    uint32_t seq = 0;
    volatile int sink = 0;
    int rc = 0;

    for (unsigned r = 0; r < runs && rc == 0; r++) {
        uint64_t t0 = now_ns();
        for (unsigned i = 0; i < iters; i++, seq++) {
            uint32_t ts = seq * 160u;
            memcpy(buf, tmpl, sizeof tmpl);
            buf[2] = (unsigned char)(seq >> 8);
            buf[3] = (unsigned char)seq;
            buf[4] = (unsigned char)(ts >> 24);
            buf[5] = (unsigned char)(ts >> 16);
            buf[6] = (unsigned char)(ts >> 8);
            buf[7] = (unsigned char)ts;
            int len = (int)sizeof tmpl;
            st = srtp_protect(tx, buf, &len);
            if (st == srtp_err_status_ok)
                st = srtp_unprotect(rx, buf, &len);
            if (st != srtp_err_status_ok || len != (int)sizeof tmpl) {
                snprintf(why, why_len, "protect/unprotect failed (srtp_err_status %d)",
                         (int)st);
                rc = 1;
                break;
            }
            sink += buf[HDR_LEN];
        }
        samples[r] = (now_ns() - t0) / iters;
    }
    (void)sink;
    srtp_dealloc(tx);
    srtp_dealloc(rx);
    if (rc == 0) {
        qsort(samples, runs, sizeof samples[0], cmp_u64);
        *out = samples[runs / 2];
    }
    return rc;
}

int main(int argc, char **argv)
{
    unsigned iters = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 40000;
    unsigned runs = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 7;
    const char *only = argc > 3 ? argv[3] : NULL;
    if (iters == 0)
        iters = 1;
    if (runs == 0 || runs > MAX_RUNS)
        runs = 7;

    srtp_err_status_t st = srtp_init();
    if (st != srtp_err_status_ok) {
        fprintf(stderr, "srtp_init failed (srtp_err_status %d)\n", (int)st);
        return 2;
    }

    const struct profile profiles[] = {
        {"AES_CM_128_HMAC_SHA1_80", srtp_crypto_policy_set_rtp_default,
         SRTP_AES_ICM_128_KEY_LEN_WSALT},
        {"AES_CM_128_HMAC_SHA1_32", srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32,
         SRTP_AES_ICM_128_KEY_LEN_WSALT},
        {"AEAD_AES_128_GCM", srtp_crypto_policy_set_aes_gcm_128_16_auth,
         SRTP_AES_GCM_128_KEY_LEN_WSALT},
    };
    for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++) {
        if (only && strcmp(only, profiles[i].name) != 0)
            continue;
        uint64_t ns = 0;
        char why[128] = "";
        if (run_profile(&profiles[i], iters, runs, &ns, why, sizeof why) == 0)
            printf("%s %llu\n", profiles[i].name, (unsigned long long)ns);
        else
            printf("%s n/a %s\n", profiles[i].name, why);
    }
    srtp_shutdown();
    return 0;
}

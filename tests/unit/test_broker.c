/*
 * hc_broker against the real Mosquitto and real MQTT clients (hc_mqtt over TLS with the run's
 * CA, mosquitto_passwd's format checked by Mosquitto itself accepting the password), and hc_proc
 * with real child processes.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hcore/broker.h"
#include "hcore/mqtt.h"
#include "hcore/proc.h"
#include "hcore/timefmt.h"

struct seen {
    char subscribed[8][256];
    char users[8][128];
    int n;
};

static void on_event(void *ctx, const struct hc_broker_event *ev)
{
    struct seen *s = ctx;

    if (ev->kind == HC_BROKER_SUBSCRIBED && s->n < 8) {
        snprintf(s->subscribed[s->n], sizeof(s->subscribed[0]), "%s", ev->filter);
        snprintf(s->users[s->n], sizeof(s->users[0]), "%s", ev->user);
        s->n++;
    }
}

Test(broker, tls_consumer_with_token_subscribes_and_the_log_says_so)
{
    struct hc_broker_options o = {0};
    hc_broker *b = NULL;
    hc_error err = HC_ERROR_INIT;
    const struct hc_broker_info *i;
    struct hc_mqtt_options mo = {0};
    hc_mqtt *sub = NULL, *pub = NULL;
    char filter[300], topic[400];
    const char *filters[1];
    int qos[1] = {1}, granted[1];
    struct seen seen = {0};
    struct hc_msg msg;

    o.integration_id = "int-1";
    cr_assert_eq(hc_broker_start(&o, &b, &err), HC_OK, "%s", err.message);
    i = hc_broker_get_info(b);
    cr_assert(strncmp(i->consumer_url, "mqtts://127.0.0.1:", 18) == 0);
    cr_assert_str_eq(i->integration_id, "int-1");
    cr_assert_eq(strlen(i->api_key_id), 36u);
    cr_assert_eq(access(i->cafile, R_OK), 0);

    mo.url = i->consumer_url;
    mo.client_id = "unit-consumer";
    mo.username = i->api_key_id;
    mo.password = i->token;
    mo.cafile = i->cafile;
    cr_assert_eq(hc_mqtt_new(&mo, HC_MQTT_SUBSCRIBER, &sub, &err), HC_OK);
    cr_assert_eq(hc_mqtt_connect(sub, &err), HC_OK, "%s", err.message);
    snprintf(filter, sizeof(filter), "haltian-iot/events/int-1/%s/#", i->api_key_id);
    filters[0] = filter;
    cr_assert_eq(hc_mqtt_subscribe(sub, 1, filters, qos, granted, &err), HC_OK, "%s", err.message);

    for (int k = 0; k < 400 && seen.n == 0; k++) {
        cr_assert_eq(hc_broker_poll_events(b, on_event, &seen, &err), HC_OK, "%s", err.message);
        if (!seen.n)
            poll(NULL, 0, 5);
    }
    cr_assert_eq(seen.n, 1);
    cr_assert_str_eq(seen.subscribed[0], filter);
    cr_assert_str_eq(seen.users[0], i->api_key_id);

    memset(&mo, 0, sizeof(mo));
    mo.url = i->publisher_url;
    mo.client_id = "unit-publisher";
    mo.username = i->publisher_user;
    mo.password = i->publisher_password;
    cr_assert_eq(hc_mqtt_new(&mo, HC_MQTT_PUBLISHER, &pub, &err), HC_OK);
    cr_assert_eq(hc_mqtt_connect(pub, &err), HC_OK, "%s", err.message);
    snprintf(topic, sizeof(topic), "haltian-iot/events/int-1/%s/measurements/co2/d1",
             i->api_key_id);
    cr_assert_eq(hc_mqtt_publish(pub, "haltian-iot/events/other/x/measurements/co2/d1", "no", 2, 1,
                                 false, NULL, &err),
                 HC_OK);
    cr_assert_eq(hc_mqtt_publish(pub, topic, "yes", 3, 1, false, NULL, &err), HC_OK);
    cr_assert_eq(hc_mqtt_wait_all(pub, 5000, &err), HC_OK, "%s", err.message);
    cr_assert_eq(hc_mqtt_receive(sub, 5000, &msg, &err), HC_OK, "%s", err.message);
    cr_assert_str_eq(msg.topic, topic);
    hc_mqtt_free(pub);
    hc_mqtt_free(sub);
    hc_broker_free(b);
}

Test(broker, wrong_token_is_refused)
{
    struct hc_broker_options o = {0};
    hc_broker *b = NULL;
    hc_error err = HC_ERROR_INIT;
    struct hc_mqtt_options mo = {0};
    hc_mqtt *sub = NULL;

    o.plain = true;
    cr_assert_eq(hc_broker_start(&o, &b, &err), HC_OK, "%s", err.message);
    mo.url = hc_broker_get_info(b)->consumer_url;
    cr_assert(strncmp(mo.url, "mqtt://", 7) == 0);
    mo.client_id = "unit-bad";
    mo.username = hc_broker_get_info(b)->api_key_id;
    mo.password = "not-the-token";
    cr_assert_eq(hc_mqtt_new(&mo, HC_MQTT_SUBSCRIBER, &sub, &err), HC_OK);
    /* Mosquitto 2.0 answers a wrong password with "not authorised" (CONNACK 5) */
    cr_assert_eq(hc_mqtt_connect(sub, &err), HC_ERR_NOT_AUTHORIZED, "%s", err.message);
    hc_mqtt_free(sub);
    hc_broker_free(b);
}

Test(broker, freeing_stops_mosquitto_and_removes_the_directory)
{
    struct hc_broker_options o = {0};
    hc_broker *b = NULL;
    hc_error err = HC_ERROR_INIT;
    char dir[600];

    cr_assert_eq(hc_broker_start(&o, &b, &err), HC_OK, "%s", err.message);
    snprintf(dir, sizeof(dir), "%s", hc_broker_get_info(b)->dir);
    cr_assert(hc_broker_alive(b));
    hc_broker_free(b);
    cr_assert_eq(access(dir, F_OK), -1);
}

Test(broker, a_missing_program_is_named)
{
    struct hc_broker_options o = {0};
    hc_broker *b = NULL;
    hc_error err = HC_ERROR_INIT;

    o.mosquitto = "no-such-mosquitto-program";
    cr_assert_eq(hc_broker_start(&o, &b, &err), HC_ERR_IO);
    cr_assert(strstr(err.message, "no-such-mosquitto-program"), "%s", err.message);
    cr_assert_null(b);
}

/* --- hc_proc ---------------------------------------------------------------------------------- */

static void read_all(hc_proc *p, char *buf, size_t size)
{
    size_t len = 0;
    int64_t until = hc_time_monotonic_ns() + 10000000000LL;

    while (hc_proc_stdout(p) >= 0 && hc_time_monotonic_ns() < until) {
        struct pollfd fd = {hc_proc_stdout(p), POLLIN, 0};
        long n;

        poll(&fd, 1, 100);
        n = hc_proc_read_stdout(p, buf + len, size - 1 - len);
        if (n > 0)
            len += (size_t)n;
        hc_proc_read_stderr(p);
    }
    buf[len] = '\0';
}

Test(proc, stdout_is_a_terminal_without_translation_and_env_is_set)
{
    const char *env[] = {"HKIT_UNIT_X=42", NULL};
    struct hc_proc_options o = {0};
    hc_proc *p = NULL;
    hc_error err = HC_ERROR_INIT;
    char buf[256];
    int status;

    o.command = "test -t 1 && echo tty $HKIT_UNIT_X; echo oops >&2; exit 3";
    o.env = env;
    o.stdout_pty = true;
    cr_assert_eq(hc_proc_start(&o, &p, &err), HC_OK, "%s", err.message);
    read_all(p, buf, sizeof(buf));
    cr_assert_str_eq(buf, "tty 42\n");
    status = hc_proc_stop(p, NULL);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 3);
    hc_proc_read_stderr(p);
    hc_proc_stderr_tail(p, 3, buf, sizeof(buf));
    cr_assert_str_eq(buf, "oops");
    hc_proc_free(p);
}

Test(proc, stop_escalates_from_sigint_to_sigterm_to_sigkill)
{
    struct hc_proc_options o = {0};
    hc_proc *p = NULL;
    hc_error err = HC_ERROR_INIT;
    int how, status;
    char buf[64];

    o.command = "trap '' INT TERM; echo ready; while :; do sleep 0.05; done";
    o.interrupt_grace_ns = 100000000;
    o.terminate_grace_ns = 100000000;
    cr_assert_eq(hc_proc_start(&o, &p, &err), HC_OK, "%s", err.message);
    for (int k = 0; k < 200; k++) { /* wait until the trap is set */
        struct pollfd fd = {hc_proc_stdout(p), POLLIN, 0};

        poll(&fd, 1, 50);
        if (hc_proc_read_stdout(p, buf, sizeof(buf)) > 0)
            break;
    }
    status = hc_proc_stop(p, &how);
    cr_assert_eq(how, 3);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    hc_proc_free(p);

    o.command = "echo ready; exec sleep 600";
    cr_assert_eq(hc_proc_start(&o, &p, &err), HC_OK, "%s", err.message);
    read_all(p, buf, 7);
    status = hc_proc_stop(p, &how);
    cr_assert_eq(how, 1);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT);
    hc_proc_free(p);
}

/*
 * A reference publisher for scripts/bench: paho's synchronous client (MQTTClient) publishing
 * "topic<TAB>payload" lines as fast as it can, at QoS 0 or with a window of unacknowledged QoS
 * 1/2 messages kept by delivery callbacks. Issue 4 states hreplay's targets as rates of this
 * kind of client; running it in the same benchmark run shows what it reaches on this machine.
 * Exits 0 when every message was published (and, at QoS > 0, acknowledged).
 *
 * Usage: bench_paho_pub HOST PORT QOS WINDOW FILE
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <MQTTClient.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static long inflight;
static int lost;

static void on_delivered(void *ctx, MQTTClient_deliveryToken token)
{
    (void)ctx;
    (void)token;
    pthread_mutex_lock(&lock);
    inflight--;
    pthread_cond_signal(&changed);
    pthread_mutex_unlock(&lock);
}

static int on_message(void *ctx, char *topic, int len, MQTTClient_message *msg)
{
    (void)ctx;
    (void)len;
    MQTTClient_freeMessage(&msg);
    MQTTClient_free(topic);
    return 1;
}

static void on_lost(void *ctx, char *cause)
{
    (void)ctx;
    (void)cause;
    pthread_mutex_lock(&lock);
    lost = 1;
    pthread_cond_signal(&changed);
    pthread_mutex_unlock(&lock);
}

int main(int argc, char **argv)
{
    MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer;
    MQTTClient client;
    char uri[300], *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long window, sent = 0;
    int qos, rc;
    FILE *fp;

    if (argc != 6) {
        fprintf(stderr, "usage: bench_paho_pub HOST PORT QOS WINDOW FILE\n");
        return 2;
    }
    qos = atoi(argv[3]);
    window = atol(argv[4]);
    if (qos < 0 || qos > 2 || window < 1 || !(fp = fopen(argv[5], "r"))) {
        fprintf(stderr, "bench_paho_pub: bad QOS, WINDOW or FILE\n");
        return 2;
    }
    snprintf(uri, sizeof(uri), "tcp://%s:%s", argv[1], argv[2]);
    if (MQTTClient_create(&client, uri, "bench-paho-pub", MQTTCLIENT_PERSISTENCE_NONE, NULL) !=
            MQTTCLIENT_SUCCESS ||
        MQTTClient_setCallbacks(client, NULL, on_lost, on_message, on_delivered) !=
            MQTTCLIENT_SUCCESS) {
        fprintf(stderr, "bench_paho_pub: cannot create the client\n");
        return 1;
    }
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.maxInflightMessages = (int)window;
    rc = MQTTClient_connect(client, &co);
    if (rc != MQTTCLIENT_SUCCESS) {
        fprintf(stderr, "bench_paho_pub: cannot connect to %s: %d\n", uri, rc);
        return 1;
    }
    while ((n = getline(&line, &cap, fp)) > 0) {
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = '\0';
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        if (qos > 0) {
            pthread_mutex_lock(&lock);
            while (inflight >= window && !lost)
                pthread_cond_wait(&changed, &lock);
            inflight++;
            pthread_mutex_unlock(&lock);
        }
        rc = MQTTClient_publish(client, line, (int)(line + n - tab - 1), tab + 1, qos, 0, NULL);
        if (rc != MQTTCLIENT_SUCCESS || lost) {
            fprintf(stderr, "bench_paho_pub: publish failed after %ld messages: %d\n", sent, rc);
            return 1;
        }
        sent++;
    }
    pthread_mutex_lock(&lock);
    while (inflight > 0 && !lost)
        pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    MQTTClient_disconnect(client, 10000);
    MQTTClient_destroy(&client);
    free(line);
    fclose(fp);
    return lost ? 1 : 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* evcurl/evcurl.h - libcurl's multi interface driven by a libevent loop (curl's
 * docs/examples/hiperfifo.c): curl says which sockets and timeouts to watch, libevent says when
 * they fire. One instance per multi handle; its user adds and removes easy handles on `multi`
 * and reads curl_multi_info_read in `ran`, called after every curl_multi_socket_action (never
 * from inside one of curl's callbacks). Used by the agent's master link (agentd/link-http.c),
 * the scheduler library (sched/http.c) and berth-lb's event stream (lb/stream.c). */
#pragma once

#include <curl/curl.h>
#include <event2/event.h>

struct evcurl {
    CURLM *multi;
    struct event_base *base;
    struct event *timer;
    void (*ran)(void *arg); /* curl ran: finished transfers are in curl_multi_info_read */
    void *arg;
};

/* 0, or -ENOMEM (then evcurl_done is still safe). */
int evcurl_init(struct evcurl *ec, struct event_base *base, void (*ran)(void *arg), void *arg);
/* Cleans up the multi handle (its easy handles must be removed first) and the timer. */
void evcurl_done(struct evcurl *ec);
/* Let curl act on its timeouts now (after curl_multi_add_handle outside its callbacks). */
void evcurl_kick(struct evcurl *ec);

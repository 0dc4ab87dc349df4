/* SPDX-License-Identifier: Apache-2.0 */
/* cli/usage.c - the help texts of berthctl and of each verb (`berthctl VERB --help`),
 * kept in one place so docs/cli.md and the binary are easy to compare. main.c dispatches;
 * the verbs-*.c files print these on --help. */
#include <string.h>

#include "cli/cli.h"

static const struct {
    const char *verb;
    const char *text;
} usages[] = {
        {NULL,
         "Usage: berthctl [--socket PATH | --master URL | --apps URL] VERB [OPTIONS] [ARGS]\n"
         "\n"
         "Control the berth agent of this host through its local API.\n"
         "\n"
         "Global options:\n"
         "  --socket PATH   agent socket (default $BERTH_SOCKET, else " CTL_DEFAULT_SOCKET ")\n"
         "  --master URL    talk to a master: agents, tasks, run, kill, inspect, wait, rm,\n"
         "                  token, frameworks, offers, roles, role set\n"
         "  --apps URL      talk to berth-apps: app deploy, ls, inspect, scale, restart,\n"
         "                  update, rm, tasks, endpoints ('berthctl app --help')\n"
         "  --token-file F  bearer token for the master (or $BERTH_TOKEN_FILE); with --apps,\n"
         "                  berth-apps' (or $BERTH_APPS_TOKEN_FILE)\n"
         "  --cacert FILE   CA bundle the master's or berth-apps' TLS certificate chains to\n"
         "                  (or $BERTH_CACERT)\n"
         "  -h, --help      show this help; 'berthctl VERB --help' for a verb\n"
         "  -V, --version   print the version\n"
         "\n"
         "Verbs:\n"
         "  run       launch a container: run --cpus C --mem M [OPTIONS] -- CMD ARGS...\n"
         "  ps        list running containers (-a: all, -q: ids only, --filter)\n"
         "  inspect   show a container as JSON\n"
         "  logs      print a container's output (-f to follow)\n"
         "  stats     show a container's resource usage, live on a terminal\n"
         "  top       live view of every running container's resource usage\n"
         "  exec      run a command inside a running container\n"
         "  kill      signal containers\n"
         "  wait      wait for a container to end; exit with its status\n"
         "  rm        remove ended containers\n"
         "  node      show the node's resources\n"
         "\n"
         "IDs may be a container id, a unique prefix of it, or a name.\n"
         "Exit status: 0 on success, 1 on error (one line on stderr); run --wait, wait\n"
         "and exec exit with the task's status.\n"},
        {"run", "Usage: berthctl run [OPTIONS] --cpus C --mem M [--] CMD [ARGS...]\n"
                "       berthctl run [OPTIONS] --cpus C --mem M --shell 'CMDLINE'\n"
                "\n"
                "Launch a container and print its id.\n"
                "\n"
                "  --name NAME            unique name (default c-<first 8 of id>)\n"
                "  --cpus C               guaranteed CPUs, decimal (0.5, 2)\n"
                "  --cpus-limit L|none    CPU quota when above --cpus; none: no quota\n"
                "  --mem M                memory limit (512MiB, 1GiB, bytes)\n"
                "  --pids P               maximum number of processes\n"
                "  -u, --user USER        task user (default: the agent's task_user)\n"
                "  --role ROLE            the role whose resources it takes (default *)\n"
                "  -e, --env K=V          environment variable (repeatable)\n"
                "  -v, --volume H:C[:ro]  bind host path H at C, read-only with :ro (repeatable)\n"
                "  --ports N              N ports from the agent's ranges: $PORT0.., $PORTS\n"
                "  -p, --publish H:P      host port H to port P inside (bridge); H alone: the\n"
                "                         same port; :P: any host port (repeatable)\n"
                "  --network MODE         host, bridge (own namespace behind the agent's\n"
                "                         bridge, ports mapped) or none (loopback only);\n"
                "                         default: the agent's [agent] network\n"
                "  --shell CMDLINE        run CMDLINE with /bin/sh -c instead of an argv\n"
                "  --wait                 wait for the task to end and exit with its status\n"
                "  -o json                print the container object instead of the id\n"},
        {"ps", "Usage: berthctl ps [-a] [-q] [--filter KEY=VALUE]... [--no-trunc] [-o json]\n"
               "\n"
               "List containers, newest first: running ones, or all with -a.\n"
               "Columns: ID NAME STATE CPUS MEM CPU% MEM USED PIDS AGE PORTS COMMAND.\n"
               "PORTS: the host ports (on the host's network), or the task's address and\n"
               "host port->port inside (bridge).\n"
               "CPU% is the average over the container's life, at least 100 ms (100% = one\n"
               "core).\n"
               "\n"
               "  -a, --all              include ended containers\n"
               "  -q, --quiet            print only the ids, one per line\n"
               "  -f, --filter KEY=VALUE only containers that match (repeatable: a key given\n"
               "                         twice matches either value, different keys all):\n"
               "                         state=RUNNING (a state filter implies -a),\n"
               "                         status=running|exited|created|dead (docker's),\n"
               "                         name=PART, id=PREFIX, reason=MEMORY_LIMIT\n"
               "  --no-trunc             full ids and commands\n"
               "  -o json                print the API's JSON\n"
               "\n"
               "Kill every running container: berthctl ps -q | xargs -r berthctl kill\n"},
        {"inspect", "Usage: berthctl inspect ID\n"
                    "\n"
                    "Print the container object as indented JSON.\n"},
        {"logs", "Usage: berthctl logs [-f] [--tail N] [--stderr] ID\n"
                 "\n"
                 "Print a container's stdout (or stderr).\n"
                 "\n"
                 "  -f, --follow       keep printing new output until the container ends\n"
                 "  -n, --tail N       only the last N lines\n"
                 "  --stderr           the task's stderr instead of its stdout\n"},
        {"stats", "Usage: berthctl stats [--no-stream] [--interval SEC] [-o json] ID\n"
                  "\n"
                  "Show a container's resource usage. On a terminal the view refreshes every\n"
                  "second until q or Ctrl-C (like 'berthctl top' for one container). With\n"
                  "--no-stream, -o json, or when stdout is not a terminal: one line, CPU%\n"
                  "as the agent measured it over its last sampling interval.\n"
                  "\n"
                  "  --no-stream       print one line and exit\n"
                  "  -i, --interval S  seconds between refreshes (default 1, 0.1 to 3600)\n"
                  "  -o json           print the agent's stats object once\n"},
        {"top", "Usage: berthctl top [--interval SEC] [--no-stream]\n"
                "\n"
                "Live view of the running containers, refreshed every second: CPU% of the\n"
                "container's own limit (cpus_limit, or cpus without a quota), CPU% of the\n"
                "node's cpus, memory used (working set) / limit, MEM%, pids; the node's CPU\n"
                "and memory use on top. Keys: q or Ctrl-C quit; the terminal is restored.\n"
                "When stdout is not a terminal, or with --no-stream, prints one frame.\n"
                "\n"
                "  -i, --interval S  seconds between refreshes (default 1, 0.1 to 3600)\n"
                "  --no-stream       print one frame and exit\n"},
        {"exec", "Usage: berthctl exec ID [--] CMD [ARGS...]\n"
                 "       berthctl exec --shell 'CMDLINE' ID\n"
                 "\n"
                 "Run a command inside a running container's namespaces and cgroups; print its\n"
                 "output and exit with its status (128+N when killed by signal N).\n"},
        {"kill", "Usage: berthctl kill [--signal S] [--grace SEC] ID...\n"
                 "\n"
                 "Send a signal (default TERM) to every process of each container; after SEC\n"
                 "seconds the rest get SIGKILL. Every ID is tried; one line on stderr for each\n"
                 "that fails, and exit status 1 if any did.\n"
                 "\n"
                 "  -s, --signal S   name (TERM, SIGINT) or number\n"
                 "  -g, --grace SEC  seconds before SIGKILL\n"},
        {"wait", "Usage: berthctl wait [-o json] ID\n"
                 "\n"
                 "Wait until the container ends and exit with its status: 0 if FINISHED, the\n"
                 "exit code, 128+signal, 137 for MEMORY_LIMIT, else 1.\n"},
        {"rm", "Usage: berthctl rm ID...\n"
               "\n"
               "Remove ended containers: their sandbox directories and records. Every ID is\n"
               "tried; one line on stderr for each that fails, and exit status 1 if any did.\n"},
        {"node", "Usage: berthctl node [-o json]\n"
                 "\n"
                 "Show the node and its resources: total, reserved, allocatable, allocated and\n"
                 "used, per resource.\n"},
        {"frameworks", "Usage: berthctl --master URL frameworks [-o json]\n"
                       "\n"
                       "List the frameworks: id, name, roles, weight, dominant share, what their\n"
                       "offers hold (OFFERED), what offers and tasks hold (ALLOCATED), live\n"
                       "tasks, and state (CONNECTED, DISCONNECTED, REMOVED; suppressed).\n"},
        {"offers", "Usage: berthctl --master URL offers [-o json]\n"
                   "\n"
                   "List the outstanding offers: framework, agent, role, cpus, mem, port ranges\n"
                   "and age.\n"},
        {"roles", "Usage: berthctl --master URL roles [-o json]\n"
                  "\n"
                  "List the roles: weight, quota guarantee and limit, what is allocated to\n"
                  "them, their dominant share and how many frameworks they have.\n"},
        {"app",
         "Usage: berthctl --apps URL [--token-file FILE] [--cacert FILE] app VERB [ARGS]\n"
         "\n"
         "Keep long-running apps with berth-apps (docs/apps.md). App files are JSON, sent\n"
         "as they are; berth-apps checks them. FILE may be - for stdin.\n"
         "\n"
         "  app deploy FILE     create the app of FILE, or update it if it exists\n"
         "  app ls [-q]         one line per app: ID INSTANCES RUNNING HEALTHY VERSION\n"
         "                      WAITING DEPLOYMENTS (-q: the ids alone)\n"
         "  app inspect ID      the app as JSON, then a line per reason instances wait\n"
         "  app scale ID N      run N instances (0-1000)\n"
         "  app restart ID      replace every instance, by the app's upgrade strategy\n"
         "  app update ID FILE  a new definition, rolled out by the upgrade strategy\n"
         "  app rm ID           kill every instance and forget the app\n"
         "  app tasks ID        one line per instance: ID AGENT ADDRESS STATE HEALTHY\n"
         "                      VERSION\n"
         "  app endpoints ID    what berth-lb routes to: SERVICE_PORT ADDRESS:PORT TASK_ID,\n"
         "                      a line per port and healthy instance not being killed\n"
         "\n"
         "  -o json             print berth-apps' answer as JSON (for a change: it holds\n"
         "                      the deployment id, printed alone otherwise)\n"
         "\n"
         "The token file defaults to $BERTH_APPS_TOKEN_FILE, the CA bundle to $BERTH_CACERT.\n"
         "Errors: one line on stderr, 'berthctl: CODE: message', exit status 1.\n"},
        {"role", "Usage: berthctl --master URL role set NAME [--weight W] [--guarantee-cpus C]\n"
                 "                [--guarantee-mem M] [--limit-cpus C|none] [--limit-mem M|none]\n"
                 "\n"
                 "Set a role's weight and quota (admin token); kept by the master across\n"
                 "restarts, over [role.NAME] of master.conf. Prints the role.\n"},
};

bool ctl_has_usage(const char *verb)
{
    for (size_t i = 1; verb && i < ARRAY_SIZE(usages); i++)
        if (streq(usages[i].verb, verb))
            return true;
    return false;
}

int ctl_print_usage(const char *verb)
{
    for (size_t i = 0; i < ARRAY_SIZE(usages); i++)
        if ((!verb && !usages[i].verb) || (verb && usages[i].verb && streq(verb, usages[i].verb))) {
            fputs(usages[i].text, stdout);
            return 0;
        }
    fputs(usages[0].text, stdout);
    return 0;
}

/* placeholder: sched is being written */
typedef int hc__placeholder_sched;

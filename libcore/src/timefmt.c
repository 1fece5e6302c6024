/* placeholder: timefmt is being written */
typedef int hc__placeholder_timefmt;

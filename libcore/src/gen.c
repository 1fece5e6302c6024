/* placeholder: gen is being written */
typedef int hc__placeholder_gen;

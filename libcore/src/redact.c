/* placeholder: redact is being written */
typedef int hc__placeholder_redact;

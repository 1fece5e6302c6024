/* placeholder: decode is being written */
typedef int hc__placeholder_decode;

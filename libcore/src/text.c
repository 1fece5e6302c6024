/* placeholder: text is being written */
typedef int hc__placeholder_text;

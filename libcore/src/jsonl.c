/* placeholder: jsonl is being written */
typedef int hc__placeholder_jsonl;

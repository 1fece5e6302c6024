/* placeholder: store is being written */
typedef int hc__placeholder_store;

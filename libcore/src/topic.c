/* placeholder: topic is being written */
typedef int hc__placeholder_topic;

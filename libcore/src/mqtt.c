/* placeholder: mqtt is being written */
typedef int hc__placeholder_mqtt;

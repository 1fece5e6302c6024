/* placeholder: tool_msgs is being written */
typedef int tool__placeholder_tool_msgs;

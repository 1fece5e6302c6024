/* placeholder: tool_select is being written */
typedef int tool__placeholder_tool_select;

#version 330 core
// Sprite batch: one quad per instance, atlas rect in a_uv.
layout(location = 0) in vec2 a_pos;
layout(location = 1) in vec4 a_uv;
layout(location = 2) in vec4 a_color;
uniform mat4 u_view_proj;
out vec2 v_uv;
out vec4 v_color;
void main() {
    v_uv = a_uv.xy + a_uv.zw * (a_pos * 0.5 + 0.5);
    v_color = a_color;
    gl_Position = u_view_proj * vec4(a_pos, 0.0, 1.0);
}

#version 330 core
// Point sprites; size falls off with age.
layout(location = 0) in vec3 a_pos;
layout(location = 1) in float a_age;
uniform mat4 u_view_proj;
uniform float u_size;
out float v_age;
void main() {
    v_age = a_age;
    gl_PointSize = u_size * (1.0 - a_age);
    gl_Position = u_view_proj * vec4(a_pos, 1.0);
}
